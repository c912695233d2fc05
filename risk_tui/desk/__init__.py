"""The desk: the service layer between the feed and storage below and the terminal above.

The terminal imports only `risk_tui.desk.api`; everything else here is the desk's own
(see `docs/architecture.md`).
"""
