"""Performance benchmarks, run as modules: `python -m benchmarks.<name>` (results git-ignored)."""
