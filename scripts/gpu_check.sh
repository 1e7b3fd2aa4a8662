#!/usr/bin/env bash
# The GPU profiles' code path on a CUDA machine with tiny local models: one command, no network, about
# 3-5 minutes, one PASS/FAIL/SKIP/INFO line per check (scripts/gpu_check.py says what each covers).
#
# Needs python3 with torch (CUDA) and transformers, and gpu-carry/ from scripts/gpu_carry.sh (run where
# the package registries are reachable; under 64 MiB with the repository). Installs nothing outside its
# scratch directory: missing pure packages go to a --target directory on PYTHONPATH, and Triton's Python
# backend gets an execution environment (a venv over the image's packages with numpy 1.26), the remedy
# docs/profiles.md describes for images whose numpy is 2.x.
#
#   bash scripts/gpu_check.sh            # GPU_CARRY=gpu-carry PYTHON=python3 GPU_CHECK_DIR=/tmp/...
#
# With $OUT set (the device tool), the log goes to $OUT/gpu_check.log and one JSON entry per check to
# $OUT/gpu_check.json, rewritten after each check. Each check has its own time limit and the whole run
# stops after GPU_CHECK_TIMEOUT seconds (330), so it ends in under 6 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${OUT:-}" ] && [ -z "${GPU_CHECK_LOGGING:-}" ]; then
  mkdir -p "$OUT"
  GPU_CHECK_LOGGING=1 bash "$0" "$@" 2>&1 | tee "$OUT/gpu_check.log"
  exit "${PIPESTATUS[0]}"
fi
carry=$(realpath "${GPU_CARRY:-gpu-carry}")
python=${PYTHON:-python3}
work=${GPU_CHECK_DIR:-$(mktemp -d /tmp/storytelling-gpu-check-XXXXXX)}
site="$work/site"
mkdir -p "$site"
say() { echo "gpu_check: $*"; }
[ -d "$carry" ] || { echo "FAIL setup: $carry is missing; run scripts/gpu_carry.sh first"; exit 1; }

# Pure packages the image may lack, from the carried wheels, each only where missing (never over the
# image's own, and never numpy: the image's numpy stays the check's numpy).
wheels=()
for pair in diffusers:diffusers open_clip:open_clip_torch pydantic:pydantic pydantic_core:pydantic_core \
    annotated_types:annotated_types typing_inspection:typing_inspection typing_extensions:typing_extensions \
    yaml:PyYAML httpx:httpx httpcore:httpcore h11:h11 anyio:anyio idna:idna certifi:certifi; do
  module=${pair%%:*} dist=${pair#*:}
  if ! "$python" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('$module') is None)"; then
    wheels+=("$dist")
  fi
done
if [ ${#wheels[@]} -gt 0 ]; then
  say "installing into $site: ${wheels[*]}"
  "$python" -m pip install --quiet --no-index --no-deps --find-links "$carry/wheels" --target "$site" \
    "${wheels[@]}"
fi

# Triton: the server from the carried nvidia-pytriton, its Python backend in a numpy-1.x environment.
env_args=()
if [ -f "$carry/pytriton.tar.xz" ]; then
  say "unpacking tritonserver and creating the execution environment"
  tar -xJf "$carry/pytriton.tar.xz" -C "$site"
  # A venv whose own site-packages (numpy 1.26) come first, then the image's: a .pth file names the
  # image interpreter's site-packages (--system-site-packages would name the base Python's, not those of
  # a venv such as the image's own python3).
  "$python" -m venv --without-pip "$work/triton-env"
  env_site=$(echo "$work"/triton-env/lib/python3.*/site-packages)
  "$python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])" > "$env_site/image-packages.pth"
  "$python" -m pip install --quiet --no-index --no-deps --target "$env_site" \
    "$carry"/wheels/numpy-1.26.4-*.whl 2>&1 | grep -v "^WARNING" || true
  env_args=(--execution-env "$work/triton-env")
fi

roots=(clients/python services/runtime services/llm services/story services/render services/evaluation
  services/orchestrator services/stack)
PYTHONPATH="$site:$(IFS=:; echo "${roots[*]}"):${PYTHONPATH:-}" \
HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 STORYTELLING_CACHE_DIR="$work/cache" \
  timeout -k 10 "${GPU_CHECK_TIMEOUT:-330}" "$python" scripts/gpu_check.py --work "$work" --carry "$carry" \
  --results "${OUT:-$work}/gpu_check.json" "${env_args[@]}"
