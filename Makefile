# Two commands on a fresh machine with Python 3.11+ and make: `make demo`, `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint venv clean

# Say what the wait is before it starts; pip stays --quiet, so only its errors (and the
# one line above) show. The install commands are not echoed: the line says what they do.
$(STAMP): pyproject.toml
	@if [ -e $(STAMP) ]; then \
		echo "pyproject.toml changed: updating $(VENV), about a minute"; \
	else \
		echo "first run: installing into $(VENV), about a minute"; \
	fi
	@$(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/risk-tui demo

# The whole suite (CI): lint, types, the import contracts (pyproject.toml: layers, the
# pure core, the terminal on the Desk API only, no cycles), then pytest with a real
# PostgreSQL server started (and stopped) by scripts/with-postgres.sh.
test: $(STAMP)
	$(BIN)/ruff check risk_tui tests benchmarks
	$(BIN)/mypy risk_tui tests
	$(BIN)/lint-imports
	PATH="$(abspath $(BIN)):$$PATH" bash scripts/with-postgres.sh $(BIN)/python -m pytest

# The inner loop: lint, types, and pytest on SQLite only, without the slow tests; no PostgreSQL.
test-fast: $(STAMP)
	$(BIN)/ruff check risk_tui tests benchmarks
	$(BIN)/mypy risk_tui tests
	$(BIN)/lint-imports
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -q -m "not slow and not postgresql"

clean:
	rm -rf $(VENV)
