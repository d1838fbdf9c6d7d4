# Two commands matter: `make run` and `make test`. Everything else is what they are made of.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
# In CI the suite runs a second time against these servers; locally, when they answer.
TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/postgres
TEST_REDIS_URL    ?= redis://127.0.0.1:6379/15

.PHONY: install browser run serve migrate demo-data test test-sqlite test-postgres lint typecheck fmt bench clean messages

CATALOGS := $(patsubst %.po,%.mo,$(wildcard recovery/translations/*/LC_MESSAGES/messages.po))

install: $(VENV)/.installed $(CATALOGS)

%.mo: %.po $(VENV)/.installed
	$(BIN)/pybabel compile --use-fuzzy -i $< -o $@

# After changing user-facing strings: re-extract and merge into each language's catalog.
messages: install
	$(BIN)/pybabel extract -F babel.cfg -k _l --no-location --omit-header -o recovery/translations/messages.pot .
	$(BIN)/pybabel update -i recovery/translations/messages.pot -d recovery/translations

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# The browser tests drive Debian's Chromium (never a Playwright download). Without it they skip
# locally and fail in CI, where .ci/run calls this target first.
CHROMIUM := /usr/bin/chromium
browser:
	@if [ -x "$(CHROMIUM)" ]; then \
		echo "browser: $$($(CHROMIUM) --version 2>/dev/null | tail -n 1)"; \
	elif [ "$$(id -u)" = "0" ]; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; \
	else \
		echo "browser: $(CHROMIUM) is missing; install it as root with:" >&2; \
		echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends chromium" >&2; \
		exit 1; \
	fi

run: install migrate demo-data serve

migrate: install
	$(BIN)/recovery db upgrade

demo-data: install
	$(BIN)/recovery demo-data

# The web app and the outbox worker side by side (the worker answers reset requests and delivers
# mail to the development mailbox); Ctrl-C or the end of the server stops both.
serve: install
	$(BIN)/recovery worker & worker=$$!; \
	trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	$(BIN)/flask --app wsgi run --host $(HOST) --port $(PORT)

test: install lint typecheck test-sqlite test-postgres

test-sqlite: install
	$(BIN)/pytest

# Runs when PostgreSQL and Redis answer; in CI (CI=true) their absence is a failure, never a skip.
test-postgres: install
	@if [ "$$CI" = "true" ] || $(BIN)/python -m tests.servers "$(TEST_POSTGRES_URL)" "$(TEST_REDIS_URL)"; then \
		RECOVERY_TEST_DATABASE_URL="$(TEST_POSTGRES_URL)" RECOVERY_TEST_REDIS_URL="$(TEST_REDIS_URL)" \
		$(BIN)/pytest; \
	else \
		echo "PostgreSQL or Redis not reachable: skipped the PostgreSQL + Redis run (CI requires it)"; \
	fi

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: install
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/resolve.py

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache
