"""Application-level tests: widgets and screens driven with App.run_test() and Pilot."""
