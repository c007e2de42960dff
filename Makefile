# Forecast Arena: `make demo` runs the platform with a demo tenant; `make test` runs the tests.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# Parallel test workers (pytest-xdist): one per core; each has its own test database and tenants.
TEST_WORKERS ?= auto
PYTEST := $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal

.PHONY: demo test test-fast lint format lock clean-local

# The benchmarks' references (mlforecast) too: a test runs every benchmark at its smallest size.
$(STAMP): requirements/base.txt requirements/dev.txt requirements/bench.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements/bench.txt
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m config.launcher demo $(DEMO_ARGS)

# The browser tests need Chromium: installed here when the machine allows, else a clear stop.
test: $(STAMP)
	scripts/ensure-chromium
	$(PYTEST) $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PYTEST) -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

lock: $(STAMP)
	$(BIN)/pip-compile --quiet --strip-extras -o requirements/base.txt requirements/base.in
	$(BIN)/pip-compile --quiet --strip-extras -o requirements/dev.txt requirements/dev.in

clean-local:
	rm -rf .local
