#!/usr/bin/env bash
# Installs the Debian packages canaryflow's local runtime and tests need, when they are missing:
#   prometheus (metrics; the runtime starts the binary itself), hey (load generation), and for the GitOps
#   image-automation tests a real OCI registry (docker-registry) with skopeo to push images into it, and for the
#   dashboard's browser tests headless Chromium (driven by Playwright from PyPI through /usr/bin/chromium).
# Nothing is downloaded at run time: this is the only place packages come from.
set -euo pipefail
missing=()
command -v prometheus >/dev/null 2>&1 || [ -x /usr/bin/prometheus ] || missing+=(prometheus)
command -v hey >/dev/null 2>&1 || missing+=(hey)
command -v docker-registry >/dev/null 2>&1 || [ -x /usr/bin/docker-registry ] || missing+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
  echo "canaryflow needs these Debian packages: ${missing[*]}" >&2
  echo "install them with: sudo apt-get install --no-install-recommends ${missing[*]}" >&2
  exit 1
fi
echo "installing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
