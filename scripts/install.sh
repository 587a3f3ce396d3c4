#!/usr/bin/env bash
# Installs tflite-tl and what its defaults need: the Python stack and the
# Fashion-MNIST Debian package (the source set for the shipped backbones).
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
if ! dpkg -s dataset-fashion-mnist >/dev/null 2>&1; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends dataset-fashion-mnist
fi
python -m pip install -q -r requirements.txt
python -m pip install -q -e . --no-deps
