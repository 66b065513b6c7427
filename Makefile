# RouteRM: every target sets itself up (venv + pinned deps) on a fresh clone.
PY      ?= python3
VENV    := .venv
VPY     := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
export ORT_DISABLE_TELEMETRY := 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup test test-py demo reproduce export clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	$(PY) -m venv $(VENV)
	$(VPY) -m pip install -q -r requirements.txt
	$(VPY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

test-py: $(STAMP)
	$(VPY) -m pytest -q tests

test: test-py test-c

# C library + CLI (include/routerm.h): ONNX Runtime headers fetched into third_party/,
# CMake build in build/, CTest parity with the Python engine + valgrind. Bundles: tiny ones made
# by the tests, or ROUTERM_TEST_BUNDLES=DIR (holding baseline more rodos arliss-switchable arliss-merged).
.PHONY: test-c
ROUTERM_TEST_BUNDLES ?=
CTEST_ARGS ?=
test-c: $(STAMP)
	scripts/fetch_onnxruntime.sh $(abspath $(VPY))
	cmake -S . -B build -DROUTERM_PYTHON=$(abspath $(VPY)) -DROUTERM_TEST_BUNDLES=$(if $(ROUTERM_TEST_BUNDLES),$(abspath $(ROUTERM_TEST_BUNDLES)))
	nice -n 10 cmake --build build -j2
	cd build && ctest -j2 --output-on-failure $(CTEST_ARGS)

demo: $(STAMP)
	$(VPY) -m lab.demo

reproduce: $(STAMP)
	$(VPY) -m lab.reproduce

# ONNX bundle of one method: `make export METHOD=arliss EXPORT_ARGS="--precision int8"` -> bundles/arliss-int8
METHOD      ?= arliss
EXPORT_ARGS ?=
export: $(STAMP)
	$(VPY) export/to_onnx.py --method $(METHOD) $(EXPORT_ARGS)

clean:
	rm -rf checkpoints bundles build
