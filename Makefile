# Two commands matter: `make demo` (chat with the bot locally) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONFIG ?= config.toml

.PHONY: demo test install dev lint format migrate run translations clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.dev-installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed

dev: $(VENV)/.dev-installed

## demo: install, migrate the local SQLite database and open the terminal chat with the bot
demo: install
	$(BIN)/buurtsignaal --config $(CONFIG) migrate
	$(BIN)/buurtsignaal --config $(CONFIG) shell

## test: install the dev extras and run the whole suite (SQLite and PostgreSQL)
test: dev
	$(BIN)/python -m pytest

lint: dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy bot conversations storage

format: dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

migrate: install
	$(BIN)/buurtsignaal --config $(CONFIG) migrate

run: install
	$(BIN)/buurtsignaal --config $(CONFIG) run

## translations: refresh the catalog template and the nl/en catalogs, then compile them
translations: dev
	$(BIN)/pybabel extract -F babel.cfg -o bot/locales/messages.pot --no-location --omit-header .
	$(BIN)/pybabel update -i bot/locales/messages.pot -d bot/locales -D messages --omit-header --no-fuzzy-matching
	$(BIN)/pybabel compile -d bot/locales -D messages

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
