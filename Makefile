# Two commands matter: `make demo` (chat with the bot locally) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The live configuration (migrate, run, check-config); the demo has its own, demo.toml.
CONFIG ?= config.toml

.PHONY: demo test test-clocks fuzz bench install dev lint format check-config migrate run translations clean

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

## demo: install and open the terminal chat with the bot, on the demo's own configuration
## (demo.toml, created on first use) and database (demo.db); `run` never uses either
demo: install
	$(BIN)/buurtsignaal shell

## test: install the dev extras and run the whole suite (SQLite and PostgreSQL)
test: dev
	$(BIN)/python -m pytest -n auto

## test-clocks: the SQLite half again with the clock started elsewhere: a Sunday night that is
## also the first days of a new year, and one second before the spring DST change
CLOCK_STARTS ?= 2027-01-03T02:30:00+01:00 2027-03-28T01:59:59+01:00
test-clocks: dev
	@for start in $(CLOCK_STARTS); do \
		echo "== clock starts at $$start"; \
		TEST_CLOCK_START=$$start $(BIN)/python -m pytest -n auto -q -m "not postgres" -p no:cacheprovider || exit 1; \
	done

## fuzz: 10,000 random and hostile updates through the real bot, with a new seed every run
## (`make test` runs a short, fixed run of the same test)
FUZZ_UPDATES ?= 10000
fuzz: dev
	FUZZ_UPDATES=$(FUZZ_UPDATES) FUZZ_RANDOM=1 $(BIN)/python -m pytest -q -p no:cacheprovider \
		tests/test_fuzz.py

## bench: the real bot against the emulator under load: one table (README, Performance) and
## bench.json; BENCH_ARGS for smaller runs, e.g. BENCH_ARGS="--residents 5 --signals 1000 10000"
BENCH_ARGS ?=
bench: install
	$(BIN)/buurtsignaal bench $(BENCH_ARGS)

lint: dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@# mypy cannot follow an editable install's import hook: it reads the folders through
	@# links named as they install (buurtsignaal.bot, ...); see [tool.mypy] in pyproject.toml
	@mkdir -p $(VENV)/typing/buurtsignaal
	@for package in bot conversations storage; do \
		ln -sfn "$(CURDIR)/$$package" $(VENV)/typing/buurtsignaal/$$package; \
	done
	$(BIN)/mypy

format: dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

check-config: install
	$(BIN)/buurtsignaal --config $(CONFIG) check-config

migrate: install
	$(BIN)/buurtsignaal --config $(CONFIG) migrate

run: install
	$(BIN)/buurtsignaal --config $(CONFIG) run

## translations: refresh the catalog template and every language's catalog (read at run time);
## a language in buurtsignaal.bot.i18n.LANGUAGES without a catalog yet gets one
translations: dev
	$(BIN)/pybabel extract -F babel.cfg -k t -k N_ -k ngettext:1,2 --no-location --no-wrap \
		--omit-header -o bot/locales/messages.pot .
	@for lang in $$($(BIN)/python -c "from buurtsignaal.bot.i18n import LANGUAGES; print(*LANGUAGES)"); do \
		$(BIN)/pybabel update -i bot/locales/messages.pot -d bot/locales -D messages -l $$lang \
			--init-missing --no-wrap --no-fuzzy-matching --ignore-obsolete || exit 1; \
	done
	@echo "Now translate the empty msgstr entries; tests/test_i18n.py lists any that are missing."

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
