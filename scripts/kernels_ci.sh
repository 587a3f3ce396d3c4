#!/usr/bin/env bash
# CI for the C++ training kernels (tflm_kernels/):
#   1. installs, only when missing, the Debian packages they need:
#      gcc-arm-none-eabi + libnewlib-arm-none-eabi +
#      libstdc++-arm-none-eabi-newlib (Cortex-M4F cross-compiler with C++
#      headers, which TFLM needs), qemu-system-arm (runs the M4 benchmark) and
#      bazel-bootstrap (Bazel 4.2.3, used fully offline);
#   2. runs the kernel pytest files: C++ golden tests plain and with
#      ASan+UBSan, TF custom ops against the goldens, golden reproducibility,
#      TL_* op descriptions, TFLM adapters against TFLM_ROOT's headers (skipped
#      without TFLM_ROOT), Cortex-M4F cross-compilation and QEMU run
#      (skip with KERNELS_CI_SKIP_PYTEST=1 when the main pytest run covers them);
#   3. prints the Cortex-M4F code size and instruction count tables;
#   4. runs `bazel test //...` offline (skip with KERNELS_CI_SKIP_BAZEL=1);
#   5. with TFLM_ROOT set: builds TFLM for the host (cached, see
#      scripts/tflm_build.sh), the native TFLM runner and the TL_* adapters
#      for the host and Cortex-M4F, so that the TFLM tests find them built.
# Run it before the main pytest run, so the cross-compile test is not skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"

missing=()
for pkg in gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib \
           qemu-system-arm bazel-bootstrap; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "== installing ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ "${KERNELS_CI_SKIP_PYTEST:-0}" != "1" ]; then
  echo "== kernel tests (pytest)"
  python -m pytest -q tests/test_tflm_kernels_cpp.py tests/test_tflm_kernels_ops.py \
    tests/test_tflm_kernels_update_ops.py tests/test_tflm_kernels_layer_ops.py \
    tests/test_tflm_kernels_goldens.py tests/test_tflm_kernels_tflm_ops.py \
    tests/test_tflm_kernels_inverted_residual_grad.py \
    tests/test_tflm_kernels_tflm_syntax.py \
    tests/test_tflm_kernels_codesize.py tests/test_tflm_kernels_m4_bench.py
fi

if [ -n "${TFLM_ROOT:-}" ]; then
  echo "== TFLM from TFLM_ROOT=$TFLM_ROOT (cached after the first build)"
  bash scripts/tflm_build.sh --target=host --runner
  if [ "${KERNELS_CI_SKIP_PYTEST:-0}" != "1" ]; then
    python -m pytest -q tests/test_tflm_build.py tests/test_tflm_kernels_tflm.py
  fi
else
  echo "== TFLM_ROOT is not set: skipping the builds against TFLM source"
fi

echo "== Cortex-M4F code size"
bash scripts/kernels_code_size.sh
echo "== Cortex-M4F instruction counts (QEMU)"
bash scripts/kernels_m4_bench.sh

if [ "${KERNELS_CI_SKIP_BAZEL:-0}" != "1" ]; then
  echo "== bazel test //... (offline)"
  bash scripts/kernels_bazel_test.sh
fi
