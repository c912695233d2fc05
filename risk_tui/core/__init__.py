"""The headless core: domain types, exact margin math, calendars, the call lifecycle.

Nothing here imports textual, httpx or sqlalchemy (an import-linter contract and a test
keep it so): everything is testable with plain pytest.
"""
