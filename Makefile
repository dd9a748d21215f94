# The two commands of the README: `make plan` and `make test`.
# Each bootstraps .venv from requirements.lock the first time (python3 + make only),
# and .venv-checkov (checkov, whose pins clash with ours) from requirements-checkov.lock.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
STACK  ?= dev

CHECKOV_VERSION := 3.3.30
CHECKOV_VENV    := .venv-checkov
CHECKOV_STAMP   := $(CHECKOV_VENV)/.installed

.PHONY: plan plan-prod test bench bench-policy lock clean lock-checkov checkov-env

# Installing from a lock: uv (pinned, itself installed by pip) installs requirements.lock
# in seconds where pip took ~110 s; the same pins, the same packages. pip remains the
# fallback, and the way when only pip's own configuration (a mirror, find-links,
# certificates) reaches an index, since uv does not read it: `make test INSTALLER=pip`.
UV_VERSION := 0.13.9
INSTALLER  ?= uv
ifeq ($(filter $(INSTALLER),uv pip),)
$(error INSTALLER: '$(INSTALLER)' is not one of: uv, pip)
endif
# $(call install,<virtualenv>,<arguments of `pip install`>)
define install
	@if [ "$(INSTALLER)" = uv ] \
	  && $(1)/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)" \
	  && echo "uv pip install $(2)" && $(1)/bin/uv pip install --quiet --python $(1)/bin/python $(2); then :; \
	else echo "pip install $(2)"; $(1)/bin/python -m pip install --quiet --disable-pip-version-check $(2); fi
endef

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("azml needs Python 3.11+, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(call install,$(VENV),-r requirements.lock)
	$(call install,$(VENV),--no-deps -e .)
	# azure-native is large: make sure every module has bytecode (import time ~3x lower).
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib > /dev/null
	touch $(STAMP)

# checkov in its own virtualenv (azml finds it at .venv-checkov/bin/checkov, or $$AZML_CHECKOV).
$(CHECKOV_STAMP): requirements-checkov.lock
	@$(PYTHON) -c 'import sys; sys.exit("azml needs Python 3.11+, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(call install,$(CHECKOV_VENV),-r requirements-checkov.lock)
	# checkov imports hundreds of modules at start-up: compile them once here.
	$(CHECKOV_VENV)/bin/python -m compileall -q -j 0 $(CHECKOV_VENV)/lib > /dev/null
	touch $(CHECKOV_STAMP)

checkov-env: $(CHECKOV_STAMP)

# The policy packs' own environment, policies/venv (PulumiPolicy.yaml: `virtualenv: venv`;
# policies/platform points at ../venv). The Pulumi CLI runs a local pack's Python from that
# virtualenv but does not create it: build it here before `pulumi preview --policy-pack policies`.
# Transitive versions come from requirements.lock (-c), so the packs run on the versions the tests run.
POLICY_VENV  := policies/venv
POLICY_STAMP := $(POLICY_VENV)/.installed

$(POLICY_STAMP): policies/requirements.txt requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit("azml needs Python 3.11+, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(POLICY_VENV)
	$(call install,$(POLICY_VENV),-r policies/requirements.txt -c requirements.lock)
	touch $(POLICY_STAMP)

.PHONY: policy-env
policy-env: $(POLICY_STAMP)

plan: $(STAMP) $(CHECKOV_STAMP)
	$(BIN)/azml plan $(STACK)

plan-prod: $(STAMP) $(CHECKOV_STAMP)
	$(BIN)/azml plan prod

test: $(STAMP) $(CHECKOV_STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP) $(CHECKOV_STAMP)
	$(BIN)/python benchmarks/plan_scaling.py

bench-policy: $(STAMP)
	$(BIN)/python benchmarks/policy_scaling.py

# Regenerate the generated docs: the rule table of docs/platform-rules.md (and docs/psrule.md)
# from the platform-rules pack, the checklist table of docs/security-checklist.md from the
# checklist pack, and the config reference of docs/config.md from the stack config schema.
.PHONY: docs
docs: $(STAMP)
	$(BIN)/python -m azml.policy.ruledoc
	$(BIN)/python -m azml.policy.checklistdoc
	$(BIN)/python -m azml.config.reference

# Regenerate the lock after changing dependencies in pyproject.toml.
lock: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(BIN)/uv pip compile pyproject.toml --extra test -o requirements.lock --python-version 3.11 --no-header --annotation-style line

# Regenerate requirements-checkov.lock (checkov and its whole closure) after changing CHECKOV_VERSION.
lock-checkov: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	echo "checkov==$(CHECKOV_VERSION)" | $(BIN)/uv pip compile - -o requirements-checkov.lock --python-version 3.11 --annotation-style line --custom-compile-command "make lock-checkov"

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) $(POLICY_VENV) .venv-evidently build

# Drift engine vs Evidently (benchmarks/drift_vs_evidently.py). Evidently's pins clash with
# ours: it lives in .venv-evidently (from requirements-evidently.lock) and the benchmark runs
# its side in a subprocess of .venv-evidently/bin/python on the same Parquet files.
EVIDENTLY_VERSION := 0.7.23
EVIDENTLY_VENV    := .venv-evidently
EVIDENTLY_STAMP   := $(EVIDENTLY_VENV)/.installed

$(EVIDENTLY_STAMP): requirements-evidently.lock
	$(PYTHON) -m venv $(EVIDENTLY_VENV)
	$(call install,$(EVIDENTLY_VENV),-r requirements-evidently.lock)
	touch $(EVIDENTLY_STAMP)

.PHONY: bench-drift lock-evidently
bench-drift: $(STAMP) $(EVIDENTLY_STAMP)
	$(BIN)/python benchmarks/drift_vs_evidently.py

# evidently 0.7.23 imports pandas internals that pandas 3 removed: pandas<3 in its lock.
lock-evidently: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	printf 'evidently==$(EVIDENTLY_VERSION)\npandas<3\n' | $(BIN)/uv pip compile - -o requirements-evidently.lock --python-version 3.11 --annotation-style line --custom-compile-command "make lock-evidently"

# Headless Chromium (Debian's package) renders the release scoreboard's HTML page
# in its screenshot test. `make test` does not need it (the test is skipped, naming
# this target); .ci/run installs it and requires it. Installing needs root (or SUDO=sudo).
# On a fresh Debian 12 machine apt-get update + install took ~30 s (~113 MB download).
SUDO ?=
.PHONY: chromium
chromium:
	@command -v chromium >/dev/null && exit 0; \
	if [ -z "$(SUDO)" ] && [ "$$(id -u)" != 0 ]; then \
	  echo "make chromium: installing Debian's chromium needs root: run it as root or with SUDO=sudo" >&2; exit 2; fi; \
	command -v apt-get >/dev/null || { echo "make chromium: no apt-get here: install Chromium with your system's package manager" >&2; exit 2; }; \
	$(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends chromium
