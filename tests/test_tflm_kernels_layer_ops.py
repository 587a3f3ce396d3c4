"""Loss, pooling, resize, normalization and weight-standardization kernels
through their TF custom ops.

Goldens: tflm_kernels/testdata/{softmax_xent,avgpool_grad,resize_bilinear_grad,
group_norm,group_norm_grad,batch_norm_grad,weight_standardize,
weight_standardize_grad}.golden (tf.GradientTape through the
TF ops / Keras layers; Keras SGD for the trained parameters).
"""
import pathlib

import numpy as np
import pytest

from tflite_tl._compat import tf
from tflite_tl.kernels import goldens
from tflite_tl.kernels import ops
from tflite_tl.layers.ws_conv import standardize_kernel

_TESTDATA = pathlib.Path(__file__).resolve().parents[1] / "tflm_kernels" / "testdata"


def _cases(kernel):
  cases = goldens.read_cases(_TESTDATA / f"{kernel}.golden")
  return pytest.mark.parametrize("case", cases, ids=[c.name for c in cases])


def _close(got, want):
  want = np.asarray(want)
  atol = 1e-5 * (1.0 + (np.abs(want).max() if want.size else 0.0))
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=atol)


@_cases("softmax_xent")
def test_softmax_xent(case):
  t = case.tensors
  loss, grad = ops.softmax_xent(t["logits"], t["labels"], case.params["label_smoothing"])
  want = t["expected_loss"]
  if np.isfinite(want).all():
    _close(loss, want)
  else:  # the same kind of non-finite value, and a no-op step
    np.testing.assert_array_equal(np.asarray(loss), want)
  _close(grad, t["expected_grad_logits"])


def test_softmax_xent_names_a_bad_label():
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r"label 3 of sample 1 is outside \[0, 3\)"):
    ops.softmax_xent(np.zeros((2, 3), np.float32), [0, 3])
  with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\)"):
    ops.softmax_xent(np.zeros((2, 3), np.float32), [0, 1], label_smoothing=1.0)


@_cases("avgpool_grad")
def test_avgpool_grad(case):
  t, p = case.tensors, case.params
  want = t["expected_grad_input"]
  got = ops.avgpool_grad(t["grad_output"], want.shape[1:3], (p["filter_h"], p["filter_w"]),
                         (p["stride_h"], p["stride_w"]), "SAME" if p["padding"] else "VALID",
                         addend=t.get("addend"))
  assert got.shape == want.shape
  _close(got, want)
  if "addend" in t:  # bit for bit the plain gradient, then ADD
    plain = ops.avgpool_grad(t["grad_output"], want.shape[1:3],
                             (p["filter_h"], p["filter_w"]), (p["stride_h"], p["stride_w"]),
                             "SAME" if p["padding"] else "VALID")
    np.testing.assert_array_equal(got, t["addend"] + plain.numpy())


def test_avgpool_grad_rejects_a_wrong_grad_shape():
  with pytest.raises(tf.errors.InvalidArgumentError, match=r"not the pool's output \(3x3\)"):
    ops.avgpool_grad(np.ones((1, 2, 2, 1), np.float32), 6, 2)
  with pytest.raises(tf.errors.InvalidArgumentError, match="addend"):
    ops.avgpool_grad(np.ones((1, 3, 3, 1), np.float32), 6, 2,
                     addend=np.ones((1, 6, 5, 1), np.float32))


@_cases("resize_bilinear_grad")
def test_resize_bilinear_grad(case):
  t, p = case.tensors, case.params
  want = t["expected_grad_input"]
  got = ops.resize_bilinear_grad(t["grad_output"], want.shape[1:3],
                                 bool(p["align_corners"]), bool(p["half_pixel_centers"]))
  _close(got, want)


def test_resize_bilinear_grad_is_tfs_gradient_of_tflite_semantics():
  # A fresh draw against TF directly, x2 as in the lite residual's upsample.
  rng = np.random.default_rng(5)
  x = tf.constant(rng.standard_normal((2, 5, 3, 4)))
  gy = rng.standard_normal((2, 10, 6, 4)).astype(np.float32)
  with tf.GradientTape() as tape:
    tape.watch(x)
    y = tf.cast(tf.image.resize(x, (10, 6)), tf.float64)
    loss = tf.reduce_sum(y * gy)
  _close(ops.resize_bilinear_grad(gy, (5, 3)), tape.gradient(loss, x).numpy())


@_cases("group_norm")
def test_group_norm(case):
  t, p = case.tensors, case.params
  got = ops.group_norm(t["x"], p["groups"], p["epsilon"], t.get("gamma"), t.get("beta"))
  _close(got, t["expected_y"])


def _check_norm(case, result):
  t = case.tensors
  if "expected_grad_input" in t:
    _close(result.grad_input, t["expected_grad_input"])
  for name in ("gamma", "beta"):
    if f"expected_{name}" in t:
      _close(getattr(result, name), t[f"expected_{name}"])
    elif name in t:  # a constant parameter is returned unchanged
      np.testing.assert_array_equal(getattr(result, name), t[name])


@_cases("group_norm_grad")
def test_group_norm_grad(case):
  t, p = case.tensors, case.params
  result = ops.group_norm_grad(t["grad_output"], t["x"], p["groups"], p["epsilon"],
                               p["learning_rate"], mask=t.get("mask"), gamma=t.get("gamma"),
                               beta=t.get("beta"), train_gamma="expected_gamma" in t)
  _check_norm(case, result)


@_cases("batch_norm_grad")
def test_batch_norm_grad(case):
  t, p = case.tensors, case.params
  quant = {}
  if "input_scale" in p:
    quant["input_quantization"] = (p["input_scale"], p["input_zero_point"])
  result = ops.batch_norm_grad(t["grad_output"], t["inv_std"], p["learning_rate"],
                               mask=t.get("mask"), x=t.get("x"), mean=t.get("mean"),
                               gamma=t.get("gamma"), beta=t.get("beta"),
                               train_gamma="expected_gamma" in t, **quant)
  _check_norm(case, result)


def test_norm_grads_explain_missing_inputs():
  with pytest.raises(ValueError, match="train_gamma needs the saved input x and the mean"):
    ops.batch_norm_grad(np.ones((1, 2), np.float32), np.ones(2, np.float32),
                        gamma=np.ones(2, np.float32), train_gamma=True)
  with pytest.raises(tf.errors.InvalidArgumentError, match="3 channels do not split into 2"):
    ops.group_norm(np.ones((1, 2, 2, 3), np.float32), 2)


@_cases("weight_standardize")
def test_weight_standardize(case):
  t = case.tensors
  _close(ops.weight_standardize(t["w"], case.params["epsilon"]), t["expected_w_hat"])


@_cases("weight_standardize_grad")
def test_weight_standardize_grad(case):
  t = case.tensors
  _close(ops.weight_standardize_grad(t["w"], t["grad_w_hat"], case.params["epsilon"]),
         t["expected_grad_w"])


def test_weight_standardize_matches_the_layer_in_float32():
  """What WSConv2D convolves with (float32 TF on the HWIO kernel), to float32
  rounding: the op is that formula on the OHWI filter."""
  rng = np.random.default_rng(5)
  kernel = rng.standard_normal((3, 3, 2, 6)).astype(np.float32)
  want = standardize_kernel(tf.constant(kernel), 1e-5).numpy()
  got = ops.weight_standardize(np.transpose(kernel, (3, 0, 1, 2)), 1e-5).numpy()
  np.testing.assert_allclose(np.transpose(got, (1, 2, 3, 0)), want, rtol=1e-5, atol=1e-5)


def test_weight_standardize_rejects_a_bad_filter():
  with pytest.raises(tf.errors.InvalidArgumentError, match="w must be a non-empty OHWI"):
    ops.weight_standardize(np.ones((2, 3, 4), np.float32))
  with pytest.raises(tf.errors.InvalidArgumentError, match="grad_w_hat must have w's shape"):
    ops.weight_standardize_grad(np.ones((2, 3), np.float32), np.ones((2, 2), np.float32))
