"""The TFLM runner built for Cortex-M4F and run in QEMU mps2-an386: the same
request, the same results as the host runner, and the 32-bit target's own
arena."""
import numpy as np
import pytest

from test_tflm_native import _LR
from test_tflm_native import _bias_step_model
from tflite_tl.tflm import TflmRuntimeError
from tflite_tl.tflm import measure_arena
from tflite_tl.tflm import native
from tflite_tl.tflm import run_model
from tflite_tl.tflm import semihosted

_GRAD = (np.arange(24, dtype=np.float32).reshape(2, 4, 3) - 11.5) / 7


def test_linker_script_puts_the_heap_in_psram():
  script = semihosted.linker_script()
  assert "PSRAM (rw)  : ORIGIN = 0x21000000, LENGTH = 16777216" in script
  assert "__tl_heap_start" in script and "__exidx_start" in script
  assert semihosted.max_arena_bytes(1000, 24) == (16 << 20) - (1 << 20) - 1024


def test_exit_line_carries_the_status():
  assert semihosted.exit_status("x\ntl_tflm_runner exit 0\n") == 0
  assert semihosted.exit_status("tl_tflm_runner exit 1") == 1
  assert semihosted.exit_status("HardFault\n") == -1


@pytest.fixture(scope="module")
def m4_runner(tflm_root):
  del tflm_root
  return native.runner_executable(target="cortex-m4f")


def test_cortex_m4f_runner_agrees_with_the_host_runner(m4_runner,
                                                       native_runner):
  del m4_runner, native_runner
  bias, model = _bias_step_model()
  steps = [[_GRAD], [2 * _GRAD]]
  m4 = run_model(model, steps, read_variables=True, measure_arena=True,
                 backend="cortex-m4f")
  host = run_model(model, steps, read_variables=True, measure_arena=True,
                   backend="native")
  expected = bias - _LR * (_GRAD.sum((0, 1)) + 2 * _GRAD.sum((0, 1)))
  np.testing.assert_allclose(m4.variables["bias"], expected, rtol=1e-6)
  np.testing.assert_array_equal(m4.variables["bias"], host.variables["bias"])
  for got, want in zip(m4.outputs, host.outputs):
    np.testing.assert_array_equal(got[0], want[0])
  assert "cortex-m4f in QEMU" in m4.arena.source
  assert "cortex-m4f" not in host.arena.source
  # 32-bit pointers: TFLM's per-node and per-tensor structs are half the
  # host's, so the target's arena is smaller, and the head (the planned
  # tensors, same bytes on both) is equal.
  nodes = "NodeAndRegistration struct"
  assert m4.arena.breakdown[nodes] * 2 == host.arena.breakdown[nodes]
  assert m4.arena.breakdown["TfLiteEvalTensor data"] < \
      host.arena.breakdown["TfLiteEvalTensor data"]
  assert m4.arena.head == host.arena.head
  assert m4.arena.total < host.arena.total


def test_cortex_m4f_failure_is_an_error_naming_it(m4_runner):
  del m4_runner
  _, model = _bias_step_model()
  with pytest.raises(TflmRuntimeError, match=r"AllocateTensors failed"):
    measure_arena(model, arena_size=500, backend="cortex-m4f")
