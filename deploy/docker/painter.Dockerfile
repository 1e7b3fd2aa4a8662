# syntax=docker/dockerfile:1
# The painter: the official Triton Inference Server container with our model repository
# (deploy/triton/model_repository) and what its Python backend needs (diffusers, torch, numpy < 2).
# Build from the repository root: `make images`.
#
# Triton 24.12 is the first release on Ubuntu 24.04 with Python 3.12 (our code needs 3.11 or newer); its
# Python backend runs the container's own Python, so the packages go into that Python.

ARG TRITON_IMAGE=nvcr.io/nvidia/tritonserver:24.12-py3
ARG PYTHON_IMAGE=python:3.12.8-slim-bookworm
# A CUDA build of torch for the container's CUDA 12.6.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126
# Pinned like the rest of the project (requirements/ml.txt); pick a release that has a build for that CUDA.
ARG TORCH_VERSION=2.13.0

# Our packages as wheels, built without touching the Triton image.
FROM ${PYTHON_IMAGE} AS wheels
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml /src/
COPY clients/python /src/clients/python
COPY services /src/services
RUN pip wheel --no-deps --wheel-dir /wheels /src/clients/python /src

FROM ${TRITON_IMAGE} AS painter
ARG TORCH_INDEX_URL
ARG TORCH_VERSION
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_BREAK_SYSTEM_PACKAGES=1
COPY requirements/painter.txt /tmp/requirements/painter.txt
RUN python3 -m pip install --extra-index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}" -r /tmp/requirements/painter.txt \
 && python3 -m pip install --no-deps tritonclient==2.73.0 open-clip-torch==3.3.0
COPY --from=wheels /wheels /tmp/wheels
RUN python3 -m pip install --no-deps /tmp/wheels/*.whl && rm -rf /tmp/wheels /tmp/requirements
COPY deploy/triton/model_repository /opt/storytelling/model_repository
LABEL org.opencontainers.image.title="storytelling-painter" \
      org.opencontainers.image.description="Triton Inference Server with the StorytellingPainter diffusers painter" \
      org.opencontainers.image.licenses="Apache-2.0" \
      dev.storytelling.entrypoints="tritonserver storytelling.stack.triton storytelling.stack.fetch"
# triton-server (uid 1000) is the unprivileged user the Triton images ship.
USER 1000:1000
ENV HF_HOME=/tmp/huggingface STORYTELLING_CACHE_DIR=/tmp/storytelling
EXPOSE 8000 8001 8002
CMD ["tritonserver", "--model-repository=/opt/storytelling/model_repository", "--model-control-mode=explicit", \
     "--load-model=painter", "--load-model=painter_stream"]
