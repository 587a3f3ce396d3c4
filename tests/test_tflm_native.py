"""The native TFLM backend: TFLM built from $TFLM_ROOT with the TL_* ops, in a
subprocess, behind the same API as the tflite_micro wheel."""
import numpy as np
import pytest
from tensorflow.lite.python import schema_py_generated as schema

from tflite_models import Op
from tflite_models import Tensor
from tflite_models import build_model
from tflite_tl.kernels.tflm_ops import custom_options
from tflite_tl.tflm import TflmRuntimeError
from tflite_tl.tflm import measure_arena
from tflite_tl.tflm import native
from tflite_tl.tflm import run_model

_LR = 0.1


def _bias_step_model():
  """TL_BIAS_GRAD (output) and TL_BIAS_GRAD_SGD updating a variable bias in
  place, whose initial value is the tensor's buffer."""
  options = custom_options("TL_BIAS_GRAD_SGD", learning_rate=_LR)
  bias = np.array([0.5, -1.0, 2.0], np.float32)
  return bias, build_model(
      [Tensor("grad", np.float32, [2, 4, 3]),
       Tensor("bias", np.float32, [3], data=bias, variable=True),
       Tensor("grad_bias", np.float32, [3])],
      [Op(["grad"], ["grad_bias"], custom="TL_BIAS_GRAD"),
       Op(["grad", "bias"], [], custom="TL_BIAS_GRAD_SGD",
          custom_options=options)],
      inputs=["grad"], outputs=["grad_bias"])


def _reshape_options(shape):
  options = schema.ReshapeOptionsT()
  options.newShape = list(shape)
  return dict(builtin=schema.BuiltinOperator.RESHAPE,
              options_type=schema.BuiltinOptions.ReshapeOptions,
              options=options)


def _identity_model(dtypes):
  """One RESHAPE [2, 3] -> [6] per dtype: inputs come back as outputs."""
  tensors, ops = [], []
  for k, dtype in enumerate(dtypes):
    tensors += [Tensor(f"in{k}", dtype, [2, 3]), Tensor(f"out{k}", dtype, [6])]
    ops.append(Op([f"in{k}"], [f"out{k}"], **_reshape_options([6])))
  return build_model(tensors, ops, [f"in{k}" for k in range(len(dtypes))],
                     [f"out{k}" for k in range(len(dtypes))])


def test_models_with_tl_ops_or_variable_tensors_need_the_native_runner():
  _, model = _bias_step_model()
  reasons = native.native_reasons(model)
  assert any("TL_BIAS_GRAD_SGD" in r for r in reasons)
  assert any("variable tensor" in r for r in reasons)
  assert native.select_backend(model) == "native"
  assert native.select_backend(model, "wheel") == "wheel"
  plain = _identity_model([np.float32])
  assert native.native_reasons(plain) == []
  assert native.select_backend(plain) == "wheel"
  assert native.select_backend(plain, "native") == "native"
  with pytest.raises(ValueError, match="Unknown TFLM backend 'tflm'"):
    native.select_backend(plain, "tflm")


def test_default_backend_comes_from_the_environment(monkeypatch):
  plain = _identity_model([np.float32])
  monkeypatch.setenv(native.BACKEND_ENV, "native")
  assert native.select_backend(plain) == "native"


def test_without_tflm_root_the_error_names_it(monkeypatch):
  monkeypatch.delenv("TFLM_ROOT", raising=False)
  _, model = _bias_step_model()
  with pytest.raises(native.NativeRunnerUnavailableError,
                     match=r"TL_BIAS_GRAD.*TFLM_ROOT is not set"):
    run_model(model, [[np.zeros((2, 4, 3), np.float32)]])


def test_tl_ops_run_and_update_a_variable_tensor_in_place(native_runner):
  del native_runner
  bias, model = _bias_step_model()
  grads = [np.random.RandomState(i).randn(2, 4, 3).astype(np.float32)
           for i in range(3)]
  result = run_model(model, [[g] for g in grads], read_variables=True,
                     measure_arena=True)
  want = bias.copy()
  for g, outs in zip(grads, result.outputs):
    np.testing.assert_allclose(outs[0], g.sum((0, 1)), rtol=1e-6)
    want -= np.float32(_LR) * g.reshape(-1, 3).sum(0)
  np.testing.assert_allclose(result.variables["bias"], want, rtol=1e-6)
  # The variable tensor's buffer lives in the tail, with TFLM's structures.
  assert result.arena.breakdown["TfLiteTensor variable buffer data"] >= 12
  assert result.arena.total == result.arena.head + result.arena.tail


def test_every_input_type_round_trips(native_runner):
  del native_runner
  dtypes = [np.float32, np.int32, np.int8, np.uint8]
  model = _identity_model(dtypes)
  rs = np.random.RandomState(0)
  inputs = [rs.randint(-100, 100, (2, 3)).astype(d) if d != np.uint8
            else rs.randint(0, 255, (2, 3)).astype(d) for d in dtypes]
  outs = run_model(model, [inputs], backend="native").outputs[0]
  for x, y in zip(inputs, outs):
    assert y.dtype == x.dtype and np.array_equal(y, x.reshape(6))
  assert measure_arena(model, backend="native").head > 0


def test_wrong_input_type_is_rejected_before_running():
  model = _identity_model([np.int8])
  with pytest.raises(ValueError, match=r"'in0' is int8; got int32"):
    native.run_model(model, [[np.zeros((2, 3), np.int32)]])


def test_prepare_failure_names_the_op_and_the_problem(native_runner):
  del native_runner
  model = build_model(
      [Tensor("grad", np.int32, [4, 3]), Tensor("grad_bias", np.float32, [3])],
      [Op(["grad"], ["grad_bias"], custom="TL_BIAS_GRAD")],
      inputs=["grad"], outputs=["grad_bias"])
  with pytest.raises(TflmRuntimeError,
                     match="TL_BIAS_GRAD: grad_output must be float32"):
    run_model(model, [[np.zeros((4, 3), np.int32)]])


def test_abort_in_tflm_becomes_an_error(native_runner):
  """An int8 SOFTMAX whose input scale is too small for TFLM's fixed-point
  preprocessing: Prepare calls abort() (QuantizeMultiplierGreaterThanOne)."""
  del native_runner
  softmax = schema.SoftmaxOptionsT()
  softmax.beta = 1.0
  model = build_model(
      [Tensor("x", np.int8, [1, 4], scale=[1e-10], zero_point=[0]),
       Tensor("y", np.int8, [1, 4], scale=[1 / 256], zero_point=[-128])],
      [Op(["x"], ["y"], builtin=schema.BuiltinOperator.SOFTMAX,
          options_type=schema.BuiltinOptions.SoftmaxOptions, options=softmax)],
      inputs=["x"], outputs=["y"])
  with pytest.raises(TflmRuntimeError, match="SIGABRT"):
    run_model(model, [[np.zeros((1, 4), np.int8)]], backend="native")


def test_arena_too_small_fails_cleanly(native_runner):
  del native_runner
  _, model = _bias_step_model()
  zeros = [[np.zeros((2, 4, 3), np.float32)]]
  with pytest.raises(TflmRuntimeError, match="AllocateTensors failed"):
    run_model(model, zeros, arena_size=800)  # the model needs 982 B
  with pytest.raises(TflmRuntimeError, match="smaller than TFLM's allocator"):
    run_model(model, zeros, arena_size=64)


def test_runner_verifies_the_flatbuffer(native_runner, tmp_path):
  (tmp_path / "model.tflite").write_bytes(b"TFL3" + b"\xff" * 60)
  (tmp_path / "request.txt").write_text("arena_size 4096\nsteps 1\n")
  with pytest.raises(TflmRuntimeError, match="not a valid .tflite flatbuffer"):
    native._run(native_runner, tmp_path)  # pylint: disable=protected-access
