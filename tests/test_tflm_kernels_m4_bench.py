"""Cortex-M4F instruction counts under QEMU (scripts/kernels_m4_bench.sh)."""
import pathlib
import re
import shutil
import subprocess

import pytest

_REPO = pathlib.Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
    reason="qemu-system-arm / gcc-arm-none-eabi not installed; scripts/kernels_ci.sh "
           "installs them")


def _run(out_dir):
  proc = subprocess.run(["bash", str(_REPO / "scripts" / "kernels_m4_bench.sh"), str(out_dir)],
                        capture_output=True, text=True, cwd=_REPO, timeout=600)
  assert proc.returncode == 0, proc.stderr
  return proc.stdout


def test_bench_runs_on_m4_and_is_deterministic(tmp_path):
  first = _run(tmp_path / "a")
  assert first == _run(tmp_path / "b")  # -icount: identical counts every run
  # The calibration loop executes exactly 200000 instructions.
  assert "5 instructions per SysTick tick" in first
  counts = {name: int(n) for name, n in
            re.findall(r"^\| (\w+) \| \d+ \| (\d+) \|", first, re.M)}
  assert len(counts) == 17 and all(n > 0 for n in counts.values())
  # The sparse update's cost scales with the number of chosen channels.
  ratio = counts["conv_wgrad_sparse_4_of_16"] / counts["conv_wgrad_all_16"]
  assert 0.2 < ratio < 0.3, ratio
  # Fusing the SGD step into the bias gradient costs no extra pass.
  assert counts["bias_grad_fused_sgd"] <= counts["bias_grad"]
