#!/usr/bin/env bash
# Cross-compiles each reference training kernel for Cortex-M4F (-Os, hard
# float) and prints a markdown table of its code size: text/data/bss of the
# kernel's object file (arm-none-eabi-size), which holds the kernel's template
# instantiations and its extern "C" entry points. Needs gcc-arm-none-eabi + libnewlib-arm-none-eabi
# (scripts/kernels_ci.sh installs them).
#
# Usage: scripts/kernels_code_size.sh [out_dir]   (default build/tflm_kernels/m4f)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-build/tflm_kernels/m4f}"
CXX="${ARM_CXX:-arm-none-eabi-g++}"
for tool in "$CXX" arm-none-eabi-size arm-none-eabi-nm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "error: $tool not found. Install the Cortex-M toolchain with" \
         "'apt-get install --no-install-recommends gcc-arm-none-eabi" \
         "libnewlib-arm-none-eabi' or run scripts/kernels_ci.sh." >&2
    exit 1
  fi
done
FLAGS=(-std=c++17 -Os -mcpu=cortex-m4 -mthumb -mfpu=fpv4-sp-d16 -mfloat-abi=hard
       -fno-exceptions -fno-rtti -fno-threadsafe-statics -ffunction-sections
       -fdata-sections -Wall -Wextra -Werror -I.)
mkdir -p "$OUT"
echo "Cortex-M4F code size of the reference training kernels"
echo "(\`$CXX\` $("$CXX" -dumpversion), \`${FLAGS[*]:1:6}\`)"
echo
echo "| Kernel | text (B) | data (B) | bss (B) | Entry points |"
echo "|---|---:|---:|---:|---|"
total=0
for src in tflm_kernels/codesize/*.cc; do
  name="$(basename "$src" .cc)"
  obj="$OUT/$name.o"
  "$CXX" "${FLAGS[@]}" -c "$src" -o "$obj"
  read -r text data bss _ < <(arm-none-eabi-size -B "$obj" | tail -n 1)
  funcs="$(arm-none-eabi-nm --defined-only "$obj" |
           awk '$3 ~ /^tl_/ {printf "%s`%s`", sep, $3; sep=", "}')"
  echo "| $name | $text | $data | $bss | $funcs |"
  total=$((total + text + data))
done
echo "| **all kernels** | $total | | | |"
