# Two commands matter (see README.md): `make run` runs the main job, `make test` runs the tests;
# `make ui` serves the page where a person answers the job `make run` left waiting.
# Each sets up .venv by itself: the first run creates it and installs the six packages of
# packages/ (editable: they are not on a package index) and the test tools; later runs reuse it
# until a pyproject.toml changes.

PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3.10 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 10))' && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run ui screenshots test lint typecheck check docs clean

PACKAGES := routilux-core routilux-stdlib routilux-handlers routilux-postgres routilux-dask routilux-ui

$(STAMP): pyproject.toml $(foreach p,$(PACKAGES),packages/$(p)/pyproject.toml)
	@test -n "$(PYTHON)" || { echo "Python 3.10 or newer is needed" >&2; exit 2; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade "pip>=25.1"
	$(BIN)/python -m pip install -q --disable-pip-version-check \
		$(foreach p,$(PACKAGES),-e packages/$(p)) --group dev
	@touch $(STAMP)

setup: $(STAMP)

# The main job: run the approval example on the embedded job store (.routilux/jobs.db). The job
# pauses for a person (exit code 3), and the command it prints resumes it in a new process.
run: $(STAMP)
	@rc=0; $(BIN)/routilux run examples/approval/flow.json --store .routilux/jobs.db \
		--param amount=120 --param employee=ana --param 'reason="train ticket"' || rc=$$?; \
	if [ $$rc -ne 3 ]; then exit $$rc; fi; \
	echo; echo "The job is paused and saved in .routilux/jobs.db. Answer it from any shell:"; \
	echo "  $(BIN)/routilux resume <job id above> --set answer=yes"; \
	echo "  $(BIN)/routilux jobs        # list jobs;  $(BIN)/routilux show <job id>"; \
	echo "Or in a browser: make ui     # http://127.0.0.1:8237/inbox"

# The page of the main job's store: answer the approval `make run` left waiting, in a browser.
# It prints its address (http://127.0.0.1:8237/) and opens nothing; Ctrl-C stops it.
ui: $(STAMP)
	@test -e .routilux/jobs.db || { echo "no .routilux/jobs.db yet: run 'make run' first" >&2; exit 2; }
	$(BIN)/routilux ui --store .routilux/jobs.db

# The screenshots of docs/_static/ui-*.png, taken by the browser tests of routilux-ui.
screenshots: $(STAMP)
	ROUTILUX_SCREENSHOTS=1 $(BIN)/python -m pytest -q -p no:randomly tests/ui/test_browser.py

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check packages tests benchmarks examples tools docs
	$(BIN)/ruff format --check packages tests benchmarks examples tools
	$(BIN)/ruff format --check --extend-exclude "*.md" docs
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

check: test lint typecheck

# The docs site (Sphinx + MyST, Furo theme), warnings as errors; its pictures need Graphviz's dot.
docs: $(STAMP)
	$(BIN)/python -m sphinx -W --keep-going -q -b html docs docs/_build/html

clean:
	rm -rf $(VENV)
