#!/usr/bin/env bash
# System packages the tests need: headless Chromium for the gallery test, Prometheus for the metrics and
# dashboard checks. Idempotent: does nothing when they are already installed.
set -euo pipefail
needed=()
command -v chromium >/dev/null || needed+=(chromium chromium-driver)
command -v prometheus >/dev/null || needed+=(prometheus)
if [ ${#needed[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install_system_deps: need root to install ${needed[*]} (or install them yourself)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${needed[@]}" >/dev/null
fi
