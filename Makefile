# Two commands on a fresh machine with Python 3.11+ and make: `make demo`, `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint venv clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/risk-tui demo

# The whole suite: lint, types, the import contract, then pytest with a real
# PostgreSQL server started (and stopped) by scripts/with-postgres.sh.
test: $(STAMP)
	$(BIN)/ruff check risk_tui tests
	$(BIN)/mypy risk_tui
	PATH="$(abspath $(BIN)):$$PATH" bash scripts/with-postgres.sh $(BIN)/python -m pytest

clean:
	rm -rf $(VENV)
