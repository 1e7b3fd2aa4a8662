# StorytellingPainter: `make run` runs the main job on the embedded default; `make test` runs the tests.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
VLLM_VENV := .venv-vllm
SRC_ROOTS := clients/python services/runtime services/llm services/story services/render services/evaluation services/orchestrator services/stack
export PYTHONPATH := $(subst $(eval) ,:,$(SRC_ROOTS)):.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

REQS := requirements/base.txt requirements/ml.txt requirements/dev.txt requirements/nodeps.txt

.PHONY: help venv vllm-venv proto docs observability images run stack test test-fast bench mutation clean

help:
	@echo "make run        run the main job on the embedded default (installs what it needs)"
	@echo "make test       install everything and run the whole test suite (what CI runs)"
	@echo "make test-fast  tests that need no engine process"
	@echo "make stack      start every service and engine locally (Ctrl-C stops all)"
	@echo "make proto      regenerate clients/python/storytelling/v1 from protos/"
	@echo "make docs       regenerate docs/configuration.md from the settings classes"
	@echo "make observability  regenerate the Grafana dashboards and alert rules of the Helm chart"
	@echo "make images     build the container images (needs docker, podman or buildah)"
	@echo "make bench      run the benchmarks (ratios against baselines measured in the same run)"
	@echo "make mutation   mutation testing of the core modules (about an hour); writes docs/mutation.md"

# The venv is rebuilt only when a requirements file changes (the stamp records that).
$(VENV)/.stamp: $(REQS) pyproject.toml clients/python/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/base.txt -r requirements/ml.txt -r requirements/dev.txt
	$(PY) -m pip install --quiet --no-deps -r requirements/nodeps.txt
	$(PY) -m pip install --quiet packaging "ml-dtypes<=0.5.4"
	$(PY) -m pip install --quiet --no-deps -e clients/python -e .
	touch $@

venv: $(VENV)/.stamp

$(VLLM_VENV)/.stamp: requirements/vllm.txt
	test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install --quiet -r requirements/vllm.txt
	$(VLLM_VENV)/bin/pip uninstall --quiet -y torchvision torchaudio torchcodec || true
	touch $@

vllm-venv: $(VLLM_VENV)/.stamp

proto: venv
	$(PY) scripts/gen_protos.py

docs: venv
	$(PY) scripts/config_reference.py

observability: venv
	$(PY) scripts/observability.py

# REGISTRY, TAG, ENGINE, PUSH=1 and DRY_RUN=1 are passed on (see the script).
images:
	bash scripts/build_images.sh

# SmolLM2-135M rarely stops by itself: cap the story and allow one regeneration, so the job stays short.
run: venv
	$(PY) -m storytelling.cli.main paint --embedded --data-dir runs --items 3 --max-tokens 256 --max-attempts 1

stack: venv vllm-venv
	$(PY) -m storytelling.stack.local

test: venv vllm-venv
	bash scripts/install_system_deps.sh
	$(PY) -m pytest -q

test-fast: venv
	$(PY) -m pytest -q -m "not slow"

BENCHES := bench/bench_runtime.py bench/bench_story.py bench/bench_render.py bench/bench_evaluation.py bench/bench_pipeline.py bench/bench_orchestrator.py

bench: venv vllm-venv
	@for script in $(BENCHES); do echo "== $$script"; $(PY) $$script || exit 1; done

# Not part of `make test` or CI. MODULES="story.pools runtime.errors" limits the run; the results go to
# docs/mutation/after.json and the report, next to the committed "before" column.
mutation: venv
	$(PY) -m pip install --quiet -r requirements/mutation.txt
	$(PY) scripts/mutation.py run $(foreach module,$(MODULES),--module $(module))

clean:
	rm -rf $(VENV) $(VLLM_VENV) .pytest_cache
