# lessonlib: `make lab` to learn, `make test` to check everything, `make bench` for the figures.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
WORKSPACE ?= workspace
PORT ?= 8888
# The learner's lab reads this extra Jupyter configuration (see assets/README.md): nbgrader's
# instructor tools and JupyterLab's news are off. A JUPYTER_CONFIG_PATH of your own still applies.
LEARNER_JUPYTER_CONFIG := $(abspath assets/jupyter)
LAB_FLAGS = --ip=127.0.0.1 --port=$(PORT) --no-browser $$( [ "$$(id -u)" = 0 ] && echo --allow-root )
# The stamp names the inputs' hash, so editing pyproject.toml or constraints.txt reinstalls.
STAMP = $(VENV)/.installed-$(1)-$(shell cat pyproject.toml constraints.txt | sha1sum | cut -c1-12)

.PHONY: lab instructor-lab test check test-browser bench install install-test notebooks assets workspace lint format system-deps clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(call STAMP,base): $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e .
	@rm -f $(VENV)/.installed-base-* && touch $@

$(call STAMP,test): $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e ".[test]"
	@rm -f $(VENV)/.installed-test-* $(VENV)/.installed-base-* && touch $@ $(call STAMP,base)

install: $(call STAMP,base)
install-test: $(call STAMP,test)

## The learner's command: install, create missing workspace copies (never overwrite), start JupyterLab.
lab: install
	$(BIN)/python -m lessonlib.workspace $(WORKSPACE)
	@echo "Starting JupyterLab on http://127.0.0.1:$(PORT)/lab (Ctrl-C to stop)"
	PATH="$(abspath $(BIN)):$$PATH" \
	JUPYTER_CONFIG_PATH="$(LEARNER_JUPYTER_CONFIG)$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH}" \
		$(BIN)/jupyter lab $(LAB_FLAGS) --ServerApp.root_dir=$(WORKSPACE)

## Instructors: JupyterLab on the course folder with nbgrader's formgrader, course list and
## "Create Assignment" tools (docs/instructors.md). Learners use `make lab`.
instructor-lab: install
	@echo "Starting the instructor's JupyterLab on http://127.0.0.1:$(PORT)/lab (Ctrl-C to stop)"
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/jupyter lab $(LAB_FLAGS) --ServerApp.root_dir=.

workspace: install
	$(BIN)/python -m lessonlib.workspace $(WORKSPACE)

## Rebuild notebooks/NN_topic/NN_topic.ipynb from their .py sources.
notebooks: install
	$(BIN)/python tools/build_notebooks.py

## Redraw the diagrams in assets/figures/ from tools/make_assets.py (deterministic SVG).
assets: install
	$(BIN)/python tools/make_assets.py

## System packages the browser and gradebook tests need (installed when root and missing).
system-deps:
	@bash tools/system_deps.sh

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Tests run on every core (pytest-xdist): a test file stays on one worker (its module fixtures are
# built once); a notebook's cells stay in one kernel. `make test XDIST=` runs serially.
XDIST ?= -n auto --dist loadfile
XDIST_NB ?= $(XDIST)

## Everything CI runs: lint, notebook sources in sync, unit + grader tests, notebooks via nbval,
## then every chapter in JupyterLab in headless Chromium (after nbval, whose runs fill the caches).
# When make started (install included): tools/make_times.py records each phase of `make test` and
# `make check` in artifacts/make-times.json, and `make bench` reports them.
MAKE_START := $(shell date +%s.%N)
TIMED = $(BIN)/python tools/make_times.py $(1) $(2) --since $(MAKE_START)

test: install-test system-deps
	@$(call TIMED,test,install)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python tools/build_notebooks.py --check
	$(BIN)/python tools/make_assets.py --check
	@$(call TIMED,test,lint)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest tests -q --ignore=tests/browser $(XDIST)
	@$(call TIMED,test,unit_and_grader)
	rm -rf build/nbval && $(BIN)/python tools/build_notebooks.py --nbval-dir build/nbval
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -q --nbval-lax --nbval-current-env \
		--nbval-cell-timeout=900 -p no:cacheprovider $(XDIST_NB) build/nbval
	@$(call TIMED,test,nbval)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest tests/browser -q
	@$(call TIMED,test,browser)
	@$(call TIMED,test,done)

## The quick loop while you work (2 min 44 s on an idle 2-core machine, compiled programs cached): lint,
## sources in sync, the unit tests not marked slow, and one chapter through nbval (`make check CHAPTER=05_initialization`).
## `make test` runs all of it and the rest.
CHAPTER ?= 00_welcome
check: install-test
	@$(call TIMED,check,install)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python tools/build_notebooks.py --check
	@$(call TIMED,check,lint)
	$(BIN)/python -m pytest tests -q -x -m "not slow" --ignore=tests/browser --ignore=tests/grader $(XDIST)
	@$(call TIMED,check,unit)
	rm -rf build/nbval-check && $(BIN)/python tools/build_notebooks.py --nbval-dir build/nbval-check
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -q --nbval-lax --nbval-current-env \
		--nbval-cell-timeout=300 -p no:cacheprovider build/nbval-check/$(CHAPTER)
	@$(call TIMED,check,nbval_$(CHAPTER))
	@$(call TIMED,check,done)

## Only the browser tests: real JupyterLab in headless Chromium (also part of `make test`).
test-browser: install-test system-deps
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest tests/browser -q

## Benchmarks (not part of `make test`): ratios against eager PyTorch and Python-loop JAX.
bench: install-test
	$(BIN)/pip install --quiet -c constraints.txt -e ".[bench]" || echo "torch unavailable: PyTorch columns will be skipped"
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python benchmarks/run.py

clean-venv:
	rm -rf $(VENV)
