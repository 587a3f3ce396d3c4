"""TL_DEPTHWISE_CHAIN_UPDATE in the kernel flavor: which layers fuse, and, in
real TFLM, the fused train step equals the unfused one bit for bit with a
smaller arena; its Prepare names what is wrong."""
import functools

import numpy as np
import pytest

import tflite_tl as tl
from tflite_models import Op
from tflite_models import Tensor
from tflite_models import build_model
from tflite_tl.flatbuffer import reader
from tflite_tl.kernels.tflm_ops import custom_options
from tflite_tl.lower import lower_model
from tflite_tl.lower.tl import rules_conv
from tflite_tl.tflm import TflmRuntimeError
from tflite_tl.tflm import run_model
from tflite_tl.tflm import runner
from tflite_tl.verify import train_step as ts

_BATCH, _STEPS = 2, 5


def _lowered(method, precision, batches):
  model = tl.apply_method(tl.load_pretrained("tiny"), method, num_classes=10)
  return lower_model(model, batch_size=_BATCH, learning_rate=0.01,
                     kernels="tl", precision=precision,
                     calibration_images=np.concatenate(
                         [x for x, _ in batches]))


def _unfused(monkeypatch, method, precision, batches):
  with monkeypatch.context() as m:
    m.setattr(rules_conv, "_chain_upstream", lambda call, p: None)
    return _lowered(method, precision, batches)


def _without_downstream(monkeypatch, method, precision, batches):
  """Chains whose grad_output is given (no deferred 1x1 conv)."""
  with monkeypatch.context() as m:
    m.setattr(rules_conv, "_deferred_pointwise",
              lambda call, p, own_mask, filter_for_grad, backward: backward)
    return _lowered(method, precision, batches)


def _ops(tflite: bytes):
  """{op name without CUSTOM: : count} of the train step."""
  return {k.replace("CUSTOM:", ""): v
          for k, v in reader.op_counts(tflite, subgraph=0).items()}


@pytest.fixture(scope="module")
def batches():
  return ts.random_batches(0, _STEPS, _BATCH, (32, 32, 1), 10)


@pytest.mark.parametrize("precision", ["float", "int8"])
def test_tinytl_b_fuses_each_depthwise_with_its_upstream(monkeypatch, batches,
                                                        precision):
  fused = _ops(_lowered("tinytl_b", precision, batches).train_tflite)
  alone = _ops(_without_downstream(monkeypatch, "tinytl_b", precision,
                                   batches).train_tflite)
  unfused = _ops(_unfused(monkeypatch, "tinytl_b", precision,
                          batches).train_tflite)
  chains = fused.get("TL_DEPTHWISE_CHAIN_UPDATE", 0)
  assert chains == unfused.get("TL_DEPTHWISE_UPDATE", 0) > 0
  assert "TL_DEPTHWISE_UPDATE" not in fused
  # Each chain replaces a depthwise update and its upstream's update ...
  assert unfused["TL_CONV_UPDATE"] - alone["TL_CONV_UPDATE"] == chains
  # ... and, where it reads one, the update of the 1x1 conv after it.
  assert 0 < alone["TL_CONV_UPDATE"] - fused["TL_CONV_UPDATE"] <= chains


def test_a_trained_depthwise_filter_does_not_fuse(batches):
  ops = _ops(_lowered("ft_full", "float", batches).train_tflite)
  assert "TL_DEPTHWISE_CHAIN_UPDATE" not in ops


@pytest.mark.parametrize("downstream", [True, False])
@pytest.mark.parametrize("precision", ["float", "int8"])
def test_fused_step_is_bit_identical_with_a_smaller_arena(
    native_runner, monkeypatch, batches, precision, downstream):
  del native_runner
  lower = _lowered if downstream else functools.partial(_without_downstream,
                                                         monkeypatch)
  fused = runner.run_train_steps(
      lower("tinytl_b", precision, batches).train_tflite, batches,
      measure_arena=True)
  unfused = runner.run_train_steps(
      _unfused(monkeypatch, "tinytl_b", precision, batches).train_tflite,
      batches, measure_arena=True)
  np.testing.assert_array_equal(fused.losses, unfused.losses)
  assert fused.params.keys() == unfused.params.keys()
  for name, value in fused.params.items():
    assert value.tobytes() == unfused.params[name].tobytes(), name
  assert fused.arena.total < unfused.arena.total


def _chain_model(up_bias_shape, filter_shape=(1, 3, 3, 4)):
  """One TL_DEPTHWISE_CHAIN_UPDATE: a 3x3 depthwise on 4x4x4, stride 1."""
  options = custom_options("TL_DEPTHWISE_CHAIN_UPDATE", in_h=4, in_w=4,
                           learning_rate=0.1, padding=1, qas=True, stride_h=1,
                           stride_w=1)
  zeros = np.zeros
  return build_model(
      [Tensor("grad", np.float32, [1, 4, 4, 4]),
       Tensor("filter", np.float32, filter_shape,
              data=zeros(filter_shape, np.float32)),
       Tensor("bias", np.float32, [4], data=zeros(4, np.float32),
              variable=True),
       Tensor("up_bias", np.float32, up_bias_shape,
              data=zeros(up_bias_shape, np.float32), variable=True)],
      [Op(["grad", "", "filter", "bias", "", "", "up_bias", ""], [],
          custom="TL_DEPTHWISE_CHAIN_UPDATE", custom_options=options)],
      inputs=["grad"], outputs=[])


def test_chain_runs_in_tflm_and_prepare_names_the_problem(native_runner):
  del native_runner
  grad = np.ones((1, 4, 4, 4), np.float32)
  run_model(_chain_model([4]), [[grad]])  # a valid chain runs
  with pytest.raises(TflmRuntimeError,
                     match="TL_DEPTHWISE_CHAIN_UPDATE: up_bias must be"):
    run_model(_chain_model([5]), [[grad]])
  with pytest.raises(TflmRuntimeError,
                     match="TL_DEPTHWISE_CHAIN_UPDATE: filter .input 2. must"):
    run_model(_chain_model([4], filter_shape=(1, 3, 3, 5)), [[grad]])
