"""Cortex-M4F cross-compilation of the reference kernels (scripts/kernels_code_size.sh)."""
import pathlib
import re
import shutil
import subprocess

import pytest

_REPO = pathlib.Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    shutil.which("arm-none-eabi-g++") is None,
    reason="gcc-arm-none-eabi not installed; scripts/kernels_ci.sh installs it")


def test_every_kernel_cross_compiles_and_is_small(tmp_path):
  proc = subprocess.run(["bash", str(_REPO / "scripts" / "kernels_code_size.sh"),
                         str(tmp_path)], capture_output=True, text=True, cwd=_REPO)
  assert proc.returncode == 0, proc.stderr
  rows = dict(re.findall(r"^\| (\w+) \| (\d+) \| 0 \| 0 \|", proc.stdout, re.M))
  kernels = {p.stem for p in (_REPO / "tflm_kernels" / "codesize").glob("*.cc")}
  assert set(rows) == kernels
  # Reference loops, no tables or state: each kernel object (float and int8
  # variants together) under 2 KB of flash, no RAM (data/bss are 0, checked
  # by the pattern above). The in-place update kernels carry the gradient,
  # the SGD step, the re-quantization and the bias update of both input
  # types: under 4 KB. The depthwise chain carries up to three layers'
  # backward (masked and unmasked loops of both filter types): under 6 KB.
  # The streamed inverted-residual backward has two orders (by rows and by
  # channel, each with masked and unmasked project loops): under 3 KB. The
  # inverted-residual update carries that stream, the depthwise's update
  # from either order and the project's (conv_update's int8 ConvUpdate, both
  # channel axes): under 7 KB. The weight-standardised conv's step also
  # carries its input gradient from the raw filter (masked and unmasked
  # loops, w_hat on the fly): under 3 KB.
  limits = {"conv_update": 4096, "depthwise_update": 4096,
            "ws_conv_update": 3072,
            "depthwise_chain_update": 6144,
            "inverted_residual_input_grad": 3072,
            "inverted_residual_update": 7168}
  assert all(0 < int(text) < limits.get(name, 2048) for name, text in rows.items()), rows
  # Hard-float ABI objects: the build really targeted the M4F's FPU.
  attrs = subprocess.run(["arm-none-eabi-readelf", "-A", str(tmp_path / "sgd.o")],
                         capture_output=True, text=True, check=True).stdout
  assert "Tag_ABI_VFP_args: VFP registers" in attrs
  assert "Tag_CPU_arch: v7E-M" in attrs and "Tag_FP_arch: VFPv4-D16" in attrs
