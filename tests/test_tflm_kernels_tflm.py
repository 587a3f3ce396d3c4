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

_KERNELS = pathlib.Path(__file__).resolve().parents[1] / "tflm_kernels"
_TESTDATA = _KERNELS / "testdata"
_TRAINING_OPS_H = _KERNELS / "tflm" / "training_ops.h"


def _registered_ops():
  """The ops AddTrainingOps adds: its {"TL_X", Register_TL_X} table."""
  return set(re.findall(r'\{"(TL_[A-Z0-9_]+)", Register_\1\}',
                        _TRAINING_OPS_H.read_text()))


@pytest.fixture(scope="module")
def kernel_test_run(tflm_root):
  del tflm_root
  binary = native_build.build_kernel_tests()
  proc = subprocess.run([str(binary), str(_TESTDATA)], capture_output=True,
                        text=True, timeout=600, check=False)
  return proc


@pytest.fixture(scope="module")
def kernel_test_output(kernel_test_run):
  """The harness's report, also when a check failed (the coverage tests
  below then name the ops a table misses)."""
  return kernel_test_run.stdout


def test_all_goldens_pass_in_tflm(kernel_test_run):
  assert kernel_test_run.returncode == 0, kernel_test_run.stdout + kernel_test_run.stderr
  assert "all TFLM kernel tests passed" in kernel_test_run.stdout


def test_registered_ops_are_the_python_op_table():
  registered = _registered_ops()
  assert registered, f"no {{\"TL_*\", Register_TL_*}} entries found in {_TRAINING_OPS_H}"
  assert registered == set(OPS), (
      f"AddTrainingOps ({_TRAINING_OPS_H.name}) and tflite_tl/kernels/tflm_ops.py OPS "
      f"differ: only registered {sorted(registered - set(OPS))}, only in OPS "
      f"{sorted(set(OPS) - registered)}")


def test_every_tl_op_runs_its_goldens_in_tflm(kernel_test_output):
  tested = {}
  for m in re.finditer(r"^(TL_[A-Z0-9_]+)\s.*?(\d+) golden cases$", kernel_test_output,
                       re.M):
    tested[m.group(1)] = tested.get(m.group(1), 0) + int(m.group(2))
  missing = sorted((_registered_ops() | set(OPS)) - set(tested))
  assert not missing, (f"{missing} have no entry in kGoldenTests of "
                       "tflm_kernels/tests/tflm_kernels_test.cc: add one per form (in place, "
                       "functional) mapping the golden's tensors to the op's inputs")
  empty = sorted(op for op, count in tested.items() if count == 0)
  assert not empty, f"{empty} ran no golden case in TFLM"


def test_prepare_rejections_print_what_is_wrong(kernel_test_output):
  rejected = set(re.findall(r"^rejected: (TL_[A-Z0-9_]+): ", kernel_test_output, re.M))
  missing = sorted((_registered_ops() | set(OPS)) - rejected)
  assert not missing, (f"{missing} have no Prepare rejection in kRejectTests of "
                       "tflm_kernels/tests/tflm_kernels_test.cc: add a valid case broken one "
                       "way and the MicroPrintf text Prepare must print")
