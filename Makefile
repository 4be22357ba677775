# Two commands matter: `make run` (set up, then run wirewatch locally) and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: setup run demo test lint schemas clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

run: setup  ## local servers (noida-db, data in .wirewatch/) + every service, watching feeds.yaml
	$(BIN)/wirewatch up

demo: setup  ## the same, watching the bundled demo news site instead (offline)
	$(BIN)/wirewatch up --demo

lint: setup
	$(BIN)/ruff check services tests benchmarks
	$(BIN)/ruff format --check services tests benchmarks
	$(BIN)/mypy
	$(BIN)/wirewatch schemas export --check

test: lint
	$(BIN)/pytest

schemas: setup
	$(BIN)/wirewatch schemas export

clean:
	rm -rf $(VENV) .wirewatch .pytest_cache .mypy_cache .ruff_cache
