#!/usr/bin/env bash
# Builds TFLM's libtensorflow-microlite.a from $TFLM_ROOT with TFLM's own
# Makefile, and our TL_* adapters against it (-Wall -Wextra -Werror), into
# ${TFLITE_TL_CACHE:-~/.cache/tflite-tl}/tflm/; a second run prints "cached".
#   bash scripts/tflm_build.sh --target=host,cortex-m4f --print_flags
#   bash scripts/tflm_build.sh --target=host --runner   # + the native runner
# The Cortex-M4F target needs gcc-arm-none-eabi, libnewlib-arm-none-eabi and
# libstdc++-arm-none-eabi-newlib (scripts/kernels_ci.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
exec env PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" python -m tflite_tl.tflm.build "$@"
