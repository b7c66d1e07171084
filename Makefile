# ATP developer commands. `make run` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ATP_HOST ?= 127.0.0.1
ATP_PORT ?= 8000
export ATP_HOST ATP_PORT

.PHONY: install run test test-pg lint fmt typecheck bench clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet ".[dev]"
	touch $@

install: $(BIN)/.installed

## Serve the console and the API on http://$(ATP_HOST):$(ATP_PORT) with the offline simulator.
run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py atp_bootstrap
	exec $(BIN)/uvicorn atp_site.asgi:application --host $(ATP_HOST) --port $(ATP_PORT) \
		--loop uvloop --http httptools --lifespan on --timeout-graceful-shutdown 30

## Run the test suite (embedded SQLite and in-memory defaults unless DATABASE_URL/REDIS_URL are set).
test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## The same suite against the machine's PostgreSQL and Redis.
test-pg: install
	DATABASE_URL=postgres://postgres@127.0.0.1:5432/atp REDIS_URL=redis://127.0.0.1:6379/0 \
		$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/python manage.py check

fmt: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	bash bench/run.sh

clean:
	rm -rf $(VENV) var staticfiles
