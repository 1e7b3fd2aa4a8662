# syntax=docker/dockerfile:1
# The four StorytellingPainter services in one image, one entrypoint each:
#   docker run IMAGE storytelling.orchestrator | storytelling.story | storytelling.render | storytelling.evaluation
# Build from the repository root: `make images` (or docker build -f deploy/docker/services.Dockerfile .).
# Multi-stage: dependencies are built in `build` with compilers at hand; `runtime` gets only the virtual
# environment, runs as an unprivileged user and holds no build tools.

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm
# The services run torch on CPU (the engines hold the GPUs); the CPU wheels are a fraction of the size.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

FROM ${PYTHON_IMAGE} AS build
ARG TORCH_INDEX_URL
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY requirements/base.txt requirements/ml.txt requirements/nodeps.txt /src/requirements/
RUN pip install --extra-index-url "${TORCH_INDEX_URL}" \
      -r /src/requirements/base.txt -r /src/requirements/ml.txt \
 && grep -v '^nvidia-pytriton' /src/requirements/nodeps.txt > /tmp/nodeps.txt \
 && pip install --no-deps -r /tmp/nodeps.txt \
 && pip install packaging "ml-dtypes<=0.5.4"
COPY pyproject.toml /src/
COPY clients/python /src/clients/python
COPY services /src/services
RUN pip install --no-deps /src/clients/python /src

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="storytelling-services" \
      org.opencontainers.image.description="StorytellingPainter orchestrator, story, render and evaluation services" \
      org.opencontainers.image.licenses="Apache-2.0" \
      dev.storytelling.entrypoints="storytelling.orchestrator storytelling.story storytelling.render storytelling.evaluation"
RUN groupadd --system --gid 10001 storytelling \
 && useradd --system --uid 10001 --gid 10001 --home-dir /home/storytelling --create-home storytelling
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    STORYTELLING_CACHE_DIR=/cache \
    HF_HOME=/cache/huggingface
RUN mkdir -p /cache && chown 10001:10001 /cache
USER 10001:10001
WORKDIR /home/storytelling
EXPOSE 50050 50051 50052 50053 9100 9101 9102 9103
ENTRYPOINT ["python", "-m"]
CMD ["storytelling.orchestrator"]
