"""The simulator: a FEED.md server on loopback with seeded, reproducible books.

- `seed.py`       the static seed desk (the worked example, account A1001)
- `generator.py`  `generate_book(accounts, seed)`: a realistic HK/SG/US desk of any size
- `ticks.py`      prices in thousandths on the HK/SG/US tick grids (generator, scenarios)
- `names.py`      made-up instrument and client names for the generator
- `store.py`      the book as keyed, encoded JSON records; snapshot streaming
- `changes.py`    `ChangeSet` (a tick's changes being built) and `LogEntry` (one logged)
- `orders.py`     the gateway: orders, fills, messages, idempotency
- `state.py`      `SimState`: book, change log and cursors, `tick()`; the `Scenario` hooks
- `scenarios.py`  seed, calm, selloff, recall, crash, faults; `build_state(...)`
- `app.py`        the Starlette app (`create_app`) and its ticker
"""
