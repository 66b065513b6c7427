# RouteRM: every target sets itself up (venv + pinned deps) on a fresh clone.
PY      ?= python3
VENV    := .venv
VPY     := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
export ORT_DISABLE_TELEMETRY := 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup test test-py demo reproduce clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	$(PY) -m venv $(VENV)
	$(VPY) -m pip install -q -r requirements.txt
	$(VPY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

test-py: $(STAMP)
	$(VPY) -m pytest -q tests

test: test-py

demo: $(STAMP)
	$(VPY) -m training.demo

reproduce: $(STAMP)
	$(VPY) -m training.reproduce

clean:
	rm -rf checkpoints bundles build
