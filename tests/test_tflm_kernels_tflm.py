"""Every TL_* op through TFLite Micro (its KernelRunner) on the golden files
the reference and TF tests use, and Prepare's rejections with their
MicroPrintf messages: tflm_kernels/tests/tflm_kernels_test.cc, built against
TFLM from $TFLM_ROOT (cached)."""
import pathlib
import re
import subprocess

import pytest

from tflite_tl.kernels.tflm_ops import OPS
from tflite_tl.tflm import native_build

_TESTDATA = pathlib.Path(__file__).resolve().parents[1] / "tflm_kernels" / "testdata"


@pytest.fixture(scope="module")
def kernel_test_output(tflm_root):
  del tflm_root
  binary = native_build.build_kernel_tests()
  proc = subprocess.run([str(binary), str(_TESTDATA)], capture_output=True,
                        text=True, timeout=600, check=False)
  assert proc.returncode == 0, proc.stdout + proc.stderr
  return proc.stdout


def test_all_goldens_pass_in_tflm(kernel_test_output):
  assert "all TFLM kernel tests passed" in kernel_test_output


def test_every_tl_op_runs_its_goldens_in_tflm(kernel_test_output):
  tested = {m.group(1): int(m.group(2)) for m in re.finditer(
      r"^(TL_[A-Z0-9_]+)\s.*?(\d+) golden cases$", kernel_test_output, re.M)}
  missing = sorted(set(OPS) - set(tested))
  assert not missing, (f"{missing} have no entry in kGoldenTests of "
                       "tflm_kernels/tests/tflm_kernels_test.cc")
  assert all(count > 0 for count in tested.values())


def test_prepare_rejections_print_what_is_wrong(kernel_test_output):
  rejected = re.findall(r"^rejected: (TL_[A-Z0-9_]+): ", kernel_test_output,
                        re.M)
  assert set(rejected) == set(OPS)
