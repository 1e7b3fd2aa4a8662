#!/usr/bin/env bash
# `make images`: builds the services and painter images with whichever container engine is here (docker,
# podman or buildah), tagged with the chart's appVersion, from the repository root.
#   REGISTRY=ghcr.io/me TAG=0.1.0 PUSH=1 scripts/build_images.sh
# ENGINE=podman picks an engine; DRY_RUN=1 prints the commands instead of running them.
set -euo pipefail
cd "$(dirname "$0")/.."

registry=${REGISTRY:-ghcr.io/storytelling-painter}
tag=${TAG:-$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' deploy/helm/storytelling/Chart.yaml)}
images=(services painter)

usable() {  # an engine that is installed and can reach its daemon / storage
  case "$1" in
    docker) command -v docker >/dev/null && docker info >/dev/null 2>&1 ;;
    podman) command -v podman >/dev/null && podman info >/dev/null 2>&1 ;;
    buildah) command -v buildah >/dev/null && buildah info >/dev/null 2>&1 ;;
    *) return 1 ;;
  esac
}

engine=${ENGINE:-}
if [ -z "$engine" ]; then
  for candidate in docker podman buildah; do
    if usable "$candidate"; then engine=$candidate; break; fi
  done
fi
if [ -z "$engine" ] || { [ -z "${DRY_RUN:-}" ] && ! usable "$engine"; }; then
  echo "images: no usable container engine (docker with a running daemon, podman or buildah);" \
       "install one, or set ENGINE" >&2
  exit 1
fi

run() {
  if [ -n "${DRY_RUN:-}" ]; then echo "$*"; else "$@"; fi
}

for image in "${images[@]}"; do
  ref="$registry/$image:$tag"
  if [ "$engine" = buildah ]; then
    run buildah bud --layers -f "deploy/docker/$image.Dockerfile" -t "$ref" .
  else
    run "$engine" build -f "deploy/docker/$image.Dockerfile" -t "$ref" .
  fi
  if [ -n "${PUSH:-}" ]; then
    run "$engine" push "$ref"
  fi
  [ -n "${DRY_RUN:-}" ] || echo "images: built $ref with $engine"
done
