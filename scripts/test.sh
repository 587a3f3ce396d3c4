#!/usr/bin/env bash
# Installs everything the tests need (Python packages, offline datasets, the
# Cortex-M4F cross compiler, QEMU and Bazel for the C++ kernels) and runs the
# default, CI-sized test subset. Heavy tests are marked `slow`: run them with
# `python -m pytest -m slow`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
python -m pip install -q -r requirements-test.txt
# Toolchains, code size and instruction-count tables, and `bazel test //...`;
# its pytest files run below with the rest.
KERNELS_CI_SKIP_PYTEST=1 bash scripts/kernels_ci.sh
python -m pytest -q "$@"
