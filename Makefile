# scim-service: every target creates/refreshes the virtual environment it needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-quick lint migrate bench bench-hot image image-check venv clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

## run: start the service (embedded PostgreSQL when DATABASE_URL is unset)
run: $(STAMP)
	$(BIN)/scim-service serve

## test: the whole test suite against a real PostgreSQL
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## test-quick: the day-to-day lane (<= 4 min here): everything but tests/processes (no real
## service processes, no fault scenarios) and slow-marked scale tests, the fuzzers at
## SCIM_FUZZ_EXAMPLES (default 20) cases
test-quick: $(STAMP)
	SCIM_FUZZ_EXAMPLES=$${SCIM_FUZZ_EXAMPLES:-20} $(BIN)/python -m pytest -m "not slow" \
	  tests/unit tests/repo tests/integration tests/idp tests/conformance $(PYTEST_ARGS)

## lint: ruff + mypy (strict over the package)
lint: $(STAMP)
	$(BIN)/ruff check scim_service tests
	$(BIN)/ruff format --check scim_service tests
	$(BIN)/mypy

## migrate: apply pending migrations to DATABASE_URL (or the embedded database)
migrate: $(STAMP)
	$(BIN)/scim-service migrate

## bench: scim-service vs scim2-server vs the pgbench ceiling (bench/README.md); BENCH_ARGS=--help
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	@touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)
	$(BIN)/python bench/hot_groups.py

## bench-hot: claim time and drain rate of a backlog on two hot groups (bench/hot_groups.py)
bench-hot: $(STAMP)
	$(BIN)/python bench/hot_groups.py $(BENCH_ARGS)

## image: build the container image as localhost/scim-service:latest (docker when an engine
## answers, else buildah; PYTHON_IMAGE=... picks the base, deploy/image.sh says more)
image:
	deploy/image.sh build

## image-check: build the image, run its entrypoint as uid 10001 against SCIM_TEST_DATABASE_URL's
## server and probe it (health, CLI token, SCIM POST and its event, SIGTERM), print its size
image-check:
	deploy/image.sh check

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
