"""TL_CONV_UPDATE / TL_DEPTHWISE_UPDATE / TL_WS_CONV_UPDATE through their TF
custom ops.

The goldens (tflm_kernels/testdata/{conv,depthwise,ws_conv}_update.golden) are
Keras SGD steps of tf.GradientTape gradients; the int8 / int32 copies must
match exactly.
"""
import pathlib

import numpy as np
import pytest

from tflite_tl._compat import tf
from tflite_tl.kernels import goldens
from tflite_tl.kernels import ops

_TESTDATA = pathlib.Path(__file__).resolve().parents[1] / "tflm_kernels" / "testdata"


def _cases(kernel):
  cases = goldens.read_cases(_TESTDATA / f"{kernel}.golden")
  return pytest.mark.parametrize("case", cases, ids=[c.name for c in cases])


def _close(got, want):
  want = np.asarray(want)
  atol = 1e-5 * (1.0 + (np.abs(want).max() if want.size else 0.0))
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=atol)


def _run(case, depthwise):
  t, p = case.tensors, case.params
  kwargs = dict(inputs=t.get("input"), mask=t.get("mask"), channels=t.get("channels"),
                weights=t.get("filter"), weights_q=t.get("filter_q"),
                weights_q_scales=t.get("filter_q_scales"), bias=t.get("bias"),
                bias_q=t.get("bias_q"), bias_q_scales=t.get("bias_q_scales"),
                strides=(p["stride_h"], p["stride_w"]),
                padding="SAME" if p["padding"] else "VALID", qas=bool(p["qas"]))
  if "input_scale" in p:
    kwargs["input_quantization"] = (p["input_scale"], p["input_zero_point"])
  if depthwise:
    return ops.depthwise_update(t["grad_output"], p["learning_rate"], **kwargs)
  return ops.conv_update(t["grad_output"], p["learning_rate"],
                         channel_axis=p["channel_axis"], **kwargs)


def _check(case, new):
  t = case.tensors
  for field, name in [("weights", "filter"), ("bias", "bias")]:
    if f"expected_{name}" in t:
      _close(getattr(new, field), t[f"expected_{name}"])
    else:
      assert getattr(new, field) is None or name in t
  for field, name in [("weights_q", "filter_q"), ("bias_q", "bias_q")]:
    if f"expected_{name}" in t:
      np.testing.assert_array_equal(getattr(new, field), t[f"expected_{name}"])


@_cases("conv_update")
def test_conv_update(case):
  _check(case, _run(case, depthwise=False))


@_cases("depthwise_update")
def test_depthwise_update(case):
  _check(case, _run(case, depthwise=True))


def _fused_int8_cases():
  cases = []
  for kernel in ("conv_update", "depthwise_update"):
    cases += [(kernel, c) for c in goldens.read_cases(_TESTDATA / f"{kernel}.golden")
              if c.tensors.get("input_grad_filter") is not None
              and c.tensors["input_grad_filter"].dtype == np.int8]
  return cases


@pytest.mark.parametrize("kernel,case", _fused_int8_cases(),
                         ids=lambda v: v if isinstance(v, str) else v.name)
def test_fused_input_grad_is_the_input_grad_op(kernel, case):
  # The fused form (9 inputs, output grad_input) computes what
  # TL_CONV_INPUT_GRAD / TL_DEPTHWISE_INPUT_GRAD compute before the update;
  # in TF that is the input-gradient op, then the update op.
  t, p = case.tensors, case.params
  want = t["expected_grad_input"]
  kwargs = dict(strides=(p["stride_h"], p["stride_w"]),
                padding="SAME" if p["padding"] else "VALID", mask=t.get("mask"))
  f = t["input_grad_filter"]
  if kernel == "depthwise_update":
    got = ops.depthwise_input_grad(t["grad_output"], f, t["input_grad_filter_scales"],
                                   want.shape[1:3], **kwargs)
  else:
    got = ops.conv_input_grad(t["grad_output"], f, t["input_grad_filter_scales"],
                              want.shape[1:3] if want.ndim == 4 else 1,
                              groups=want.shape[-1] // f.shape[-1], **kwargs)
  _close(got, want)
  _check(case, _run(case, depthwise=kernel == "depthwise_update"))


def test_untrained_channels_are_untouched_and_qas_changes_the_step():
  (case,) = [c for c in goldens.read_cases(_TESTDATA / "conv_update.golden")
             if c.name == "int8_k3_s1_same_odd_qas"]
  t = case.tensors
  new = _run(case, depthwise=False)
  untouched = np.setdiff1d(np.arange(t["filter_q"].shape[0]), t["channels"])
  np.testing.assert_array_equal(np.asarray(new.weights_q)[untouched],
                                t["filter_q"][untouched])
  # Without QAS the same learning rate barely moves the integer weights.
  case.params["qas"] = 0
  no_qas = _run(case, depthwise=False)
  step = np.abs(np.asarray(new.weights) - t["filter"]).max()
  step_no_qas = np.abs(np.asarray(no_qas.weights) - t["filter"]).max()
  assert step_no_qas < 1e-3 * step


def test_channels_are_checked_at_run_time():
  # A channel list that is only known when the graph runs (a variable
  # tensor on the device) is still checked, with the index named.
  dy = np.ones((1, 3, 3, 2), np.float32)
  x = np.ones((1, 3, 3, 2), np.float32)
  w = np.zeros((2, 1, 1, 2), np.float32)

  @tf.function(input_signature=[tf.TensorSpec([None], tf.int32)])
  def step(channels):
    return ops.conv_update(dy, 0.1, inputs=x, channels=channels, weights=w,
                           padding="VALID").weights

  np.testing.assert_array_equal(step(tf.constant([1]))[0], w[0])
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r"channel 2 \(position 1\) is outside \[0, 2\)"):
    step(tf.constant([0, 2]))


def test_channel_subset_input_is_told_from_the_full_input():
  rng = np.random.default_rng(3)
  x = rng.standard_normal((1, 4, 4, 3)).astype(np.float32)
  dy = rng.standard_normal((1, 4, 4, 2)).astype(np.float32)
  w = rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
  full = ops.conv_update(dy, 0.1, inputs=x, channels=[2, 0], weights=w, channel_axis=1)
  subset = ops.conv_update(dy, 0.1, inputs=x[..., [2, 0]], channels=[2, 0], weights=w,
                           channel_axis=1)
  np.testing.assert_array_equal(full.weights, subset.weights)
  np.testing.assert_array_equal(np.asarray(full.weights)[..., 1], w[..., 1])


@pytest.mark.parametrize("kwargs,match", [
    (dict(), "nothing to update"),
    (dict(bias=np.zeros(2, np.float32), channels=[0]), "only serve a trained filter"),
    (dict(weights=np.zeros((2, 1, 1, 2), np.float32)), "needs the saved layer input"),
    (dict(weights=np.zeros((2, 1, 1, 2), np.float32), weights_q=np.zeros((2, 1, 1, 2), np.int8),
          weights_q_scales=np.ones(2, np.float32), inputs=np.ones((1, 3, 3, 2), np.float32),
          channels=[1]),
     r"filter is \[2,1,1,2\], expected \[1,1,1,2\]"),
    (dict(bias=np.zeros(2, np.float32), bias_q=np.zeros(2, np.int32),
          bias_q_scales=np.zeros(2, np.float32)), r"bias_q_scales\[0\] is not positive"),
])
def test_bad_updates_are_explained(kwargs, match):
  with pytest.raises(tf.errors.InvalidArgumentError, match=match):
    ops.conv_update(np.ones((1, 3, 3, 2), np.float32), 0.1, padding="VALID", **kwargs)


def test_python_arguments_are_checked():
  with pytest.raises(ValueError, match="weights_q and weights_q_scales go together"):
    ops.conv_update(np.ones((1, 2), np.float32), 0.1, weights_q=np.zeros((2, 2), np.int8))
  with pytest.raises(ValueError, match="channel_axis must be 0 or 1"):
    ops.conv_update(np.ones((1, 2), np.float32), 0.1, channel_axis=2)


@_cases("ws_conv_update")
def test_ws_conv_update(case):
  t, p = case.tensors, case.params
  new_weights, new_bias = ops.ws_conv_update(
      t["grad_output"], p["learning_rate"], p["epsilon"], inputs=t["input"],
      weights=t["filter"], mask=t.get("mask"), bias=t.get("bias"),
      strides=(p["stride_h"], p["stride_w"]), padding="SAME" if p["padding"] else "VALID")
  _close(new_weights, t["expected_filter"])
  if "bias" in t:
    _close(new_bias, t["expected_bias"])
  else:
    assert new_bias is None
  if "expected_grad_input" in t:
    # The fused input gradient from the raw filter (the TFLM op with its raw
    # filter as input 8); the step is the same with it.
    again, _, grad_input = ops.ws_conv_update(
        t["grad_output"], p["learning_rate"], p["epsilon"], inputs=t["input"],
        weights=t["filter"], mask=t.get("mask"), bias=t.get("bias"),
        strides=(p["stride_h"], p["stride_w"]),
        padding="SAME" if p["padding"] else "VALID", input_grad=True)
    _close(grad_input, t["expected_grad_input"])
    np.testing.assert_array_equal(again, new_weights)


def test_ws_conv_update_of_a_zero_gradient_is_no_step():
  rng = np.random.default_rng(0)
  weights = rng.standard_normal((4, 3, 3, 2)).astype(np.float32)
  x = np.full((1, 5, 5, 2), np.inf, np.float32)  # a non-finite saved input
  new_weights, _ = ops.ws_conv_update(np.zeros((1, 5, 5, 4), np.float32), 0.1, 1e-5,
                                      inputs=x, weights=weights)
  np.testing.assert_array_equal(new_weights, weights)
