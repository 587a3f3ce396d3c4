"""TL_DEPTHWISE_CONV, TL_CONV and TL_INVERTED_RESIDUAL through their TF
custom ops.

Goldens: tflm_kernels/testdata/depthwise_conv.golden (tf.nn.depthwise_conv2d +
bias + activation in float64; the mask of the activation's linear range),
conv.golden (tf.nn.conv2d per group, optionally of the standardised filter)
and inverted_residual.golden (TFLM's int8 conv chain re-computed by int8_ops,
1x1 expands and wider or strided ones such as a 3x3 stride-2 stem).
"""
import pathlib

import numpy as np
import pytest

from tflite_tl._compat import tf
from tflite_tl.kernels import goldens
from tflite_tl.kernels import ops

_TESTDATA = pathlib.Path(__file__).resolve().parents[1] / "tflm_kernels" / "testdata"
_CASES = goldens.read_cases(_TESTDATA / "depthwise_conv.golden")
_CONV_CASES = goldens.read_cases(_TESTDATA / "conv.golden")
_ACTIVATIONS = {0: None, 1: "relu", 2: "relu6"}


def _run(case):
  t, p = case.tensors, case.params
  return ops.depthwise_conv(t["input"], t["filter"], t.get("bias"),
                            strides=(p["stride_h"], p["stride_w"]),
                            padding="SAME" if p["padding"] else "VALID",
                            activation=_ACTIVATIONS[p["activation"]])


@pytest.mark.parametrize("case", _CASES, ids=[c.name for c in _CASES])
def test_depthwise_conv(case):
  output, mask = _run(case)
  want = case.tensors["expected_output"]
  atol = 1e-5 * (1.0 + np.abs(want).max())
  np.testing.assert_allclose(np.asarray(output), want, rtol=1e-5, atol=atol)
  if "expected_mask" in case.tensors:
    np.testing.assert_array_equal(mask, case.tensors["expected_mask"])
    # The fused mask is TL_RELU_MASK's on the op's own output.
    relu6 = case.params["activation"] == 2
    np.testing.assert_array_equal(mask, ops.relu_mask(output, relu6=relu6))


def test_bad_filter_is_rejected():
  x = np.zeros((1, 4, 4, 3), np.float32)
  with pytest.raises(tf.errors.InvalidArgumentError, match="filter must be"):
    ops.depthwise_conv(x, np.zeros((1, 3, 3, 4), np.float32))
  with pytest.raises(ValueError, match="activation must be"):
    ops.depthwise_conv(x, np.zeros((1, 3, 3, 3), np.float32), activation="gelu")


_IR_CASES = goldens.read_cases(_TESTDATA / "inverted_residual.golden")


@pytest.mark.parametrize("case", _IR_CASES, ids=[c.name for c in _IR_CASES])
def test_inverted_residual(case):
  t, p = case.tensors, case.params
  # The goldens use one activation for the expand and the depthwise conv.
  assert not p["has_expand"] or p["expand_activation"] == p["depthwise_activation"]

  def stage(prefix):
    return t[f"{prefix}_filter"], t[f"{prefix}_bias"], t[f"{prefix}_scales"]

  out, expand_mask, dw_mask = ops.inverted_residual(
      t["input"], stage("expand") if p["has_expand"] else None, stage("depthwise"),
      stage("project"), input_quantization=(p["input_scale"], p["input_zero_point"]),
      expand_quantization=((p["expand_scale"], p["expand_zero_point"])
                           if p["has_expand"] else None),
      depthwise_quantization=(p["depthwise_scale"], p["depthwise_zero_point"]),
      output_quantization=(p["output_scale"], p["output_zero_point"]),
      strides=(p["stride_h"], p["stride_w"]),
      padding="SAME" if p["padding"] else "VALID",
      expand_strides=(p["expand_stride_h"], p["expand_stride_w"]),
      expand_padding="SAME" if p["expand_padding"] else "VALID",
      activation=_ACTIVATIONS[p["depthwise_activation"]], masks=True)
  np.testing.assert_array_equal(np.asarray(out), t["expected_output"])
  # The masks are TL_RELU_MASK's on the unfused int8 layers' outputs; TF's op
  # always returns both (expand_mask empty without an expand conv, zeros
  # without an activation).
  if p["has_expand"] and p["expand_activation"]:
    np.testing.assert_array_equal(expand_mask, t["expected_expand_mask"])
  elif not p["has_expand"]:
    assert np.asarray(expand_mask).shape == (0,)
  if p["depthwise_activation"]:
    np.testing.assert_array_equal(dw_mask, t["expected_depthwise_mask"])
  else:
    assert not np.asarray(dw_mask).any()


def test_inverted_residual_rejects_an_expand_window_larger_than_a_valid_input():
  case = next(c for c in _IR_CASES if c.params["has_expand"])
  t, p = case.tensors, case.params
  h = t["input"].shape[1]
  expand = (np.zeros((t["expand_filter"].shape[0], h + 1, 1, t["input"].shape[3]), np.int8),
            t["expand_bias"], t["expand_scales"])
  with pytest.raises(tf.errors.InvalidArgumentError, match="empty or inconsistent block"):
    ops.inverted_residual(
        t["input"], expand,
        (t["depthwise_filter"], t["depthwise_bias"], t["depthwise_scales"]),
        (t["project_filter"], t["project_bias"], t["project_scales"]),
        input_quantization=(p["input_scale"], p["input_zero_point"]),
        expand_quantization=(p["expand_scale"], p["expand_zero_point"]),
        depthwise_quantization=(p["depthwise_scale"], p["depthwise_zero_point"]),
        output_quantization=(p["output_scale"], p["output_zero_point"]),
        expand_padding="VALID")


def test_inverted_residual_rejects_a_mismatched_project():
  case = _IR_CASES[0]
  t, p = case.tensors, case.params
  with pytest.raises(tf.errors.InvalidArgumentError, match="project_filter must be"):
    ops.inverted_residual(
        t["input"], (t["expand_filter"], t["expand_bias"], t["expand_scales"]),
        (t["depthwise_filter"], t["depthwise_bias"], t["depthwise_scales"]),
        (t["expand_filter"], t["expand_bias"], t["expand_scales"]),
        input_quantization=(p["input_scale"], p["input_zero_point"]),
        expand_quantization=(p["expand_scale"], p["expand_zero_point"]),
        depthwise_quantization=(p["depthwise_scale"], p["depthwise_zero_point"]),
        output_quantization=(p["output_scale"], p["output_zero_point"]))


@pytest.mark.parametrize("case", _CONV_CASES, ids=[c.name for c in _CONV_CASES])
def test_conv(case):
  t, p = case.tensors, case.params
  output, mask, filter_hat = ops.conv(
      t["input"], t["filter"], t.get("bias"), strides=(p["stride_h"], p["stride_w"]),
      padding="SAME" if p["padding"] else "VALID", activation=_ACTIVATIONS[p["activation"]],
      standardize_epsilon=p["epsilon"] if p["standardize"] else None)
  want = t["expected_output"]
  np.testing.assert_allclose(np.asarray(output), want, rtol=1e-5,
                             atol=1e-5 * (1.0 + np.abs(want).max()))
  if "expected_mask" in t:
    np.testing.assert_array_equal(mask, t["expected_mask"])
  if p["standardize"]:
    np.testing.assert_allclose(np.asarray(filter_hat), t["expected_filter_hat"], rtol=1e-5,
                               atol=1e-5)
  else:
    assert np.asarray(filter_hat).shape == (0,)


def test_conv_rejects_a_filter_whose_groups_do_not_divide():
  x = np.zeros((1, 4, 4, 6), np.float32)
  with pytest.raises(tf.errors.InvalidArgumentError, match="filter must be OHWI"):
    ops.conv(x, np.zeros((3, 3, 3, 4), np.float32))  # 4 input channels of 6
  with pytest.raises(tf.errors.InvalidArgumentError, match="filter must be OHWI"):
    ops.conv(x, np.zeros((4, 3, 3, 2), np.float32))  # 3 groups, 4 outputs
  output, _, _ = ops.conv(x, np.zeros((3, 3, 3, 2), np.float32))  # 3 groups, 3 outputs
  assert output.shape == (1, 4, 4, 3)
