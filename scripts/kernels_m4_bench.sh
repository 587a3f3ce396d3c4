#!/usr/bin/env bash
# Instruction counts of the reference training kernels on Cortex-M4F:
# builds tflm_kernels/bench/m4_bench.cc bare-metal for QEMU's mps2-an386
# (Cortex-M4 + FPU; -O2, hard float, newlib semihosting), runs it with
# -icount (deterministic), and prints a markdown table. QEMU counts
# instructions, not cycles. Needs gcc-arm-none-eabi, libnewlib-arm-none-eabi
# and qemu-system-arm (scripts/kernels_ci.sh installs them).
#
# Usage: scripts/kernels_m4_bench.sh [out_dir]   (default build/tflm_kernels/m4_bench)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-build/tflm_kernels/m4_bench}"
for tool in arm-none-eabi-gcc qemu-system-arm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "error: $tool not found. Install it with 'apt-get install" \
         "--no-install-recommends gcc-arm-none-eabi libnewlib-arm-none-eabi" \
         "qemu-system-arm' or run scripts/kernels_ci.sh." >&2
    exit 1
  fi
done
mkdir -p "$OUT"
# gcc (not g++) links: the benchmark uses no C++ runtime, and Debian's
# toolchain ships no libstdc++ for arm-none-eabi.
arm-none-eabi-gcc -std=c++17 -O2 -mcpu=cortex-m4 -mthumb -mfpu=fpv4-sp-d16 \
  -mfloat-abi=hard -fno-exceptions -fno-rtti -fno-threadsafe-statics \
  -ffunction-sections -fdata-sections -Wall -Wextra -Werror -I. \
  --specs=rdimon.specs -T tflm_kernels/bench/mps2_an386.ld -Wl,--gc-sections \
  tflm_kernels/bench/m4_bench.cc -lm -o "$OUT/m4_bench.elf"
# icount shift 3: 8 ns of virtual time per instruction; SysTick (25 MHz)
# then ticks once per 5 instructions. The calibration loop measures the ratio.
timeout 300 qemu-system-arm -M mps2-an386 -nographic -monitor none -serial none \
  -semihosting-config enable=on,target=native -icount shift=3 \
  -kernel "$OUT/m4_bench.elf" > "$OUT/raw.txt"
grep -q '^done$' "$OUT/raw.txt" || { echo "error: benchmark did not finish" >&2; cat "$OUT/raw.txt" >&2; exit 1; }
awk '
  /^calibration/ { ratio = $3 / $2 }
  /^kernel/ {
    if (!ratio) { print "error: no calibration line" > "/dev/stderr"; exit 1 }
    insns = $3 * ratio
    rows = rows sprintf("| %s | %d | %d | %.1f |\n", $2, $4, insns, insns / $4)
  }
  END {
    printf "Cortex-M4F instructions per kernel call (QEMU mps2-an386, -icount, %g instructions per SysTick tick)\n", ratio
    print "Layer: 16x16x16 input, 3x3 kernels, stride 1, SAME, 16 output channels, batch 1; gcc -O2."
    print ""
    print "| Kernel | MACs or elements | Instructions | Instructions per MAC/element |"
    print "|---|---:|---:|---:|"
    printf "%s", rows
  }' "$OUT/raw.txt"
