# jaxo2o: every target sets up its own virtual environment from requirements.lock.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
TIER   ?= quick
export JAXO2O_CACHE_DIR ?= $(CURDIR)/.cache/jax

.PHONY: install test test-all bench perf mutants lint format clean

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

## test: the suite CI runs (slow Brax integration tests included, a few of them; the MJX
## parity of the tasks beyond Hopper-v5 and the MJX end-to-end sweep, marked heavy, are not)
test: install
	$(PY) -m pytest -q -n 2 --dist loadgroup -m "not heavy"

## test-all: every test, the heavy MJX ones included (about 5 more minutes of CPU on 2 cores)
test-all: install
	$(PY) -m pytest -q -n 2 --dist loadgroup

## test-fast: skip the tests marked slow
test-fast: install
	$(PY) -m pytest -q -n 2 -m "not slow"

## bench: reproduce the result tables of the chosen tier (TIER=quick by default)
bench: install
	$(PY) -m benchmarks.run --tier $(TIER)

## perf: throughput and scaling benchmark, writes results/perf.md
perf: install
	$(PY) -m benchmarks.perf

## mutants: mutation testing (cosmic-ray) of the update code of jaxo2o/methods and
## jaxo2o/core/losses.py against each file's fast tests; prints killed / run per file and the
## survivors. FILES=jaxo2o/core/losses.py limits it; SCOPE=all mutates every line;
## MUTANTS_FLAGS=--rerun-survivors reruns the survivors (after new tests), --report only prints.
## Sessions are kept in .cache/mutants, so an interrupted run resumes.
FILES ?=
SCOPE ?= update
MUTANTS_FLAGS ?=
mutants: install
	nice -n 10 $(PY) tests/mutants.py --scope $(SCOPE) $(MUTANTS_FLAGS) $(FILES)

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

clean:
	rm -rf $(VENV) .cache .pytest_cache
