# The two commands of the README: `make plan` and `make test`.
# Each bootstraps .venv from requirements.lock the first time (python3 + make only).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
STACK  ?= dev

.PHONY: plan plan-prod test bench lock clean

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("azml needs Python 3.11+, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	# azure-native is large: make sure every module has bytecode (import time ~3x lower).
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib > /dev/null
	touch $(STAMP)

plan: $(STAMP)
	$(BIN)/azml plan $(STACK)

plan-prod: $(STAMP)
	$(BIN)/azml plan prod

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/plan_scaling.py

# Regenerate the lock after changing dependencies in pyproject.toml.
lock: $(STAMP)
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra test -o requirements.lock --python-version 3.11 --no-header --annotation-style line

clean:
	rm -rf $(VENV) build
