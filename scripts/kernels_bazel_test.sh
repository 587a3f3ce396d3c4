#!/usr/bin/env bash
# Runs `bazel test //...` (the C++ kernel golden tests, plain and ASan+UBSan)
# fully offline with Debian's bazel-bootstrap (Bazel 4.2.3). The output base
# lives in a temporary directory and no bazel-* symlinks are left in the tree.
#
# Usage: scripts/kernels_bazel_test.sh [extra bazel test args]
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v bazel >/dev/null 2>&1; then
  echo "error: bazel not found. Install Debian's bazel-bootstrap" \
       "('apt-get install --no-install-recommends bazel-bootstrap') or run" \
       "scripts/kernels_ci.sh." >&2
  exit 1
fi
ROOT="${KERNELS_BAZEL_ROOT:-${TMPDIR:-/tmp}/tflite_tl_bazel_$(id -u)}"
mkdir -p "$ROOT"
# --batch: no server left running; standalone spawns: containers often forbid
# the namespaces the sandbox needs; --symlink_prefix=/: no bazel-* links.
exec bazel --output_user_root="$ROOT" --batch test \
  --spawn_strategy=standalone --symlink_prefix=/ --noshow_progress \
  --test_output=errors "$@" //...
