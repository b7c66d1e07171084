# ATP developer commands. `make run` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ATP_HOST ?= 127.0.0.1
ATP_PORT ?= 8000
export ATP_HOST ATP_PORT

# Every package, runtime and dev, comes from requirements.lock: exact versions with hashes,
# compiled from pyproject.toml by `make lock`. torch is the CPU build pip finds in
# TORCH_WHEELS, named by the lock's --find-links (see docs/dependencies.md).
LOCK := requirements.lock
TORCH_WHEELS ?= /opt/wheels
PIP_COMPILE := $(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --extra dev \
	--strip-extras --no-emit-index-url --find-links $(TORCH_WHEELS) \
	--output-file $(LOCK) pyproject.toml

.PHONY: install lock lock-upgrade lock-check audit run test test-pg lint fmt typecheck bench bench-limits bench-governance clean

# The server runs from this tree; only atpctl, the CLI (pyproject's one package), is installed.
$(BIN)/.installed: $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps --only-binary :all: -r $(LOCK)
	$(BIN)/pip-sync --quiet $(LOCK)  # removes what the lock no longer lists
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation --no-index -e .  # atpctl
	$(BIN)/python -m pip check
	touch $@

install: $(BIN)/.installed

## Re-lock after editing pyproject.toml's dependencies; pins that still fit are kept.
lock: install
	$(PIP_COMPILE)

## Re-lock with the newest release of every package that pyproject.toml's ranges allow.
lock-upgrade: install
	$(PIP_COMPILE) --upgrade

## Fails when pyproject.toml and requirements.lock disagree (part of `make lint`).
lock-check: install
	$(BIN)/python tools/lock_check.py pyproject.toml $(LOCK)

## Looks the locked versions up in the Python Packaging Advisory Database (needs PyPI's JSON API).
audit: install
	$(BIN)/pip-audit --strict --disable-pip --require-hashes -r $(LOCK)

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

lint: install lock-check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/python manage.py check

fmt: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## The gateway against LiteLLM and Portkey, then interleaved before/after pairs of ATP at
## BENCH_BEFORE and at this tree (default baseline: the last commit before the write-behind
## and permission hardening).
BENCH_BEFORE ?= 6c4e0d5
BENCH_PAIRS ?= 5
bench: install
	bash bench/run.sh
	$(BIN)/python bench/pairs.py --before $(BENCH_BEFORE) --pairs $(BENCH_PAIRS)

## Limits and budgets on the hot path: ATP with limits vs ATP with Redis alone vs Portkey.
bench-limits: install
	$(BIN)/python bench/limits_pairs.py --runs $(BENCH_PAIRS)

## Governance on a 2,000-token prompt with personal data: 100 policies and redaction against Portkey.
bench-governance: install
	$(BIN)/python bench/governance_runs.py --runs $(BENCH_PAIRS)

clean:
	rm -rf $(VENV) var staticfiles
