#!/usr/bin/env bash
# Installs everything the tests need (Python packages, offline datasets, native
# toolchains) and runs the default, CI-sized test subset. Heavy tests are
# marked `slow`: run them with `python -m pytest -m slow`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
python -m pip install -q -r requirements-test.txt
python -m pytest -q "$@"
