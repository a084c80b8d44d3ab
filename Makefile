# rnd-equivalence: `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DELETE_ON_ERROR:

# The Pythons the lock installs on (pyproject.toml's [tool.rndlib] pythons; a test checks).
PYTHONS := 3.11 3.12 3.13
# python3 when it is one of them, else the newest python3.X of them that runs.
PYTHON ?= $(shell for p in python3 $(foreach v,$(PYTHONS),python$(v)); do \
  v=$$($$p -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) && \
  case " $(PYTHONS) " in (*" $$v "*) echo $$p; exit;; esac; done)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LOCK := .ci/requirements.lock
LAB_LOCK := .ci/lab.lock
LAB_STAMP := $(VENV)/.lab-installed
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
QUICK_DIR := build/quick

.PHONY: help env lab figures figures-quick timings bench seeds test unit test-jax lint clean lock wheels

help: ## list the targets
	@grep -E '^[a-zA-Z0-9_%./-]+:.*## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-34s\033[0m %s\n", $$1, $$2}'

$(STAMP): $(LOCK) pyproject.toml
	@v=$$($(or $(PYTHON),python3) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null); \
	case " $(PYTHONS) " in *" $$v "*) ;; *) \
	  echo "The lock installs on Python $(PYTHONS); found '$(or $(PYTHON),none)'$${v:+ (Python $$v)}."; \
	  echo "Install one of them, or name it: make $(or $(MAKECMDGOALS),env) PYTHON=/path/to/python3.13"; \
	  exit 1;; esac
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --no-deps --disable-pip-version-check -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation --disable-pip-version-check -e .
	$(PY) -m neural_tangents_compat  # import neural_tangents in any order (a start-up hook)
	touch $@

env: $(STAMP) ## create the pinned virtual environment in .venv (once; again when the lock changes)

$(LAB_STAMP): $(STAMP) $(LAB_LOCK)
	$(PY) -m pip install --quiet --no-deps --disable-pip-version-check -r $(LAB_LOCK)
	touch $@

lab: $(LAB_STAMP) ## open the notebooks in JupyterLab (pinned; added to .venv on first use)
	$(VENV)/bin/jupyter lab notebooks

figures: $(STAMP) ## run every notebook in order with full parameters, in place: figures/, data/results/
	$(PY) -m rndlib.pipeline --full $(NOTEBOOKS)

notebooks/%.ipynb: $(STAMP) FORCE ## rerun one notebook in full, e.g. make notebooks/01_ntk_regime.ipynb
	$(PY) -m rndlib.pipeline --full $@

figures-quick: $(STAMP) ## run every notebook with quick parameters into build/quick (committed files untouched)
	$(PY) -m rndlib.pipeline --quick --output $(QUICK_DIR) $(NOTEBOOKS)

timings: $(STAMP) ## every notebook quick (into build/timings), then full (in place), each timed: data/results/timings.json
	$(PY) -m rndlib.pipeline --timings $(NOTEBOOKS)

bench: $(STAMP) ## time RND, ensembles and the exact GP, sample posteriors up to N = 20,000, play the wheel bandit at every radius: data/results/bench*.json, figures/bench_*
	RNDLIB_OUTPUT_DIR=$(CURDIR) $(PY) -m rndlib.benchmark
	RNDLIB_OUTPUT_DIR=$(CURDIR) $(PY) -m rndlib.regret_study

SEEDS ?= 100-119
seeds: $(STAMP) ## every notebook quick at seeds $(SEEDS) (build/seeds): data/results/seeds.json (resumes)
	$(PY) -m rndlib.pipeline --seeds $(SEEDS) $(NOTEBOOKS)

test: $(STAMP) ## unit tests, then the whole quick suite of notebooks
	$(PY) -m pytest

unit: $(STAMP) ## unit tests only (the notebooks are skipped)
	$(PY) -m pytest -m "not notebooks"

JAX ?= 0.10.2
test-jax: ## unit tests on another jax, unlocked, in build/: make test-jax [JAX=0.12.0.1 PYTHON=python3.12]
	$(PYTHON) .ci/try_jax.py $(JAX)

lint: $(STAMP) ## ruff over rndlib, tests and the notebooks; the generated tables match their files
	$(VENV)/bin/ruff check rndlib neural_tangents_compat.py tests notebooks .ci
	$(VENV)/bin/ruff format --check rndlib neural_tangents_compat.py tests notebooks .ci
	$(PY) -m rndlib.tables --check

lock: ## re-resolve the requirements into .ci/requirements.lock and environment.yml, then check wheels per platform
	$(PYTHON) .ci/lock.py

wheels: ## check that every pin has a wheel for each supported Python and platform (no re-resolve)
	$(PYTHON) .ci/lock.py --wheels-only

clean: ## remove build/ and caches (keeps .venv)
	rm -rf build .pytest_cache .ruff_cache
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +

FORCE:
