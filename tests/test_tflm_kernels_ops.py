"""TF custom-op adapters (tflite_tl.kernels.ops/build) against the TF goldens."""
import pathlib

import numpy as np
import pytest

from tflite_tl._compat import tf
from tflite_tl.kernels import build
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


def _conv_args(case):
  p = case.params
  return dict(strides=(p["stride_h"], p["stride_w"]),
              padding="SAME" if p["padding"] else "VALID")


@pytest.fixture(scope="module", autouse=True)
def library():
  return ops.load_ops()


def test_library_is_cached_by_source_hash():
  first = build.build_tf_ops()
  mtime = first.stat().st_mtime_ns
  assert build.build_tf_ops() == first
  assert first.stat().st_mtime_ns == mtime  # unchanged sources: no rebuild
  int(first.parent.name, 16)  # the cache key is the hex source digest


def _input_quant(case):
  p = case.params
  if case.tensors["input"].dtype == np.int8:
    return {"input_quantization": (p["input_scale"], p["input_zero_point"])}
  return {}


def test_missing_compiler_is_explained(monkeypatch, tmp_path):
  monkeypatch.setenv("CXX", "no-such-compiler-xyz")
  with pytest.raises(build.KernelBuildError, match="no-such-compiler-xyz.*not found"):
    build.build_tf_ops(build_dir=tmp_path)


@_cases("conv_weight_grad")
def test_conv_weight_grad_sparse(case):
  t = case.tensors
  fh, fw = case.params["filter_h"], case.params["filter_w"]
  got = ops.conv_weight_grad_sparse(t["input"], t["grad_output"], t["channels"],
                                    (fh, fw), **_conv_args(case), **_input_quant(case),
                                    groups=case.params["groups"])
  assert got.shape == t["expected_grad_filter"].shape
  _close(got, t["expected_grad_filter"])


def test_conv_weight_grad_sparse_rejects_bad_channel():
  x = np.ones((1, 4, 4, 2), np.float32)
  gy = np.ones((1, 4, 4, 3), np.float32)
  with pytest.raises(tf.errors.InvalidArgumentError, match=r"channels must lie in \[0, 3\)"):
    ops.conv_weight_grad_sparse(x, gy, [0, 3], 3)


def test_conv_grads_reject_channels_not_divisible_by_groups():
  x = np.ones((1, 4, 4, 6), np.float32)
  gy = np.ones((1, 4, 4, 4), np.float32)
  with pytest.raises(tf.errors.InvalidArgumentError, match="4 group"):
    ops.conv_weight_grad_sparse(x, gy, [0], 3, groups=4)
  with pytest.raises(ValueError, match="groups must be a positive int"):
    ops.conv_input_grad(gy, np.ones((4, 3, 3, 3), np.int8), np.ones(4, np.float32), 4,
                        groups=0)


def test_conv_weight_grad_sparse_rejects_wrong_grad_shape():
  x = np.ones((1, 5, 5, 2), np.float32)
  gy = np.ones((1, 5, 5, 3), np.float32)  # stride 2 SAME needs 3x3
  with pytest.raises(tf.errors.InvalidArgumentError, match="does not match the convolution"):
    ops.conv_weight_grad_sparse(x, gy, [0], 3, strides=2)


def test_conv_weight_grad_matches_tf_on_a_fresh_shape():
  # Not from the golden file: an independent draw checked against TF directly.
  rng = np.random.default_rng(7)
  x = rng.standard_normal((2, 11, 9, 3)).astype(np.float32)
  w = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
  gy = rng.standard_normal((2, 6, 5, 4)).astype(np.float32)
  wv = tf.constant(w)
  with tf.GradientTape() as tape:
    tape.watch(wv)
    loss = tf.reduce_sum(tf.nn.conv2d(x, wv, 2, "SAME") * gy)
  want = np.transpose(tape.gradient(loss, wv).numpy(), (3, 0, 1, 2))
  got = ops.conv_weight_grad_sparse(x, gy, [3, 1], 3, strides=2)
  _close(got, want[[3, 1]])


@_cases("conv_input_grad")
def test_conv_input_grad(case):
  t = case.tensors
  want = t["expected_grad_input"]
  # Rank-2 cases are the FULLY_CONNECTED form ([N, C], filter [Co, Ci]).
  got = ops.conv_input_grad(t["grad_output"], t["filter"], t["scales"],
                            want.shape[1:3] if want.ndim == 4 else 1, **_conv_args(case),
                            groups=case.params["groups"], mask=t.get("mask"))
  assert got.shape == want.shape
  _close(got, want)


@_cases("depthwise_weight_grad")
def test_depthwise_weight_grad(case):
  t = case.tensors
  fh, fw = case.params["filter_h"], case.params["filter_w"]
  got = ops.depthwise_weight_grad(t["input"], t["grad_output"], (fh, fw), **_conv_args(case),
                                  **_input_quant(case))
  _close(got, t["expected_grad_filter"])


@_cases("depthwise_input_grad")
def test_depthwise_input_grad(case):
  t = case.tensors
  want = t["expected_grad_input"]
  got = ops.depthwise_input_grad(t["grad_output"], t["filter"], t["scales"], want.shape[1:3],
                                 depth_multiplier=case.params["depth_multiplier"],
                                 **_conv_args(case), mask=t.get("mask"))
  assert got.shape == want.shape
  _close(got, want)


def test_input_grads_reject_a_short_mask():
  gy = np.ones((1, 3, 3, 2), np.float32)
  with pytest.raises(tf.errors.InvalidArgumentError, match=r"mask must be \[3\] bytes"):
    ops.conv_input_grad(gy, np.ones((2, 3, 3, 2), np.int8), np.ones(2, np.float32), 3,
                        mask=np.zeros(2, np.uint8))
  with pytest.raises(tf.errors.InvalidArgumentError, match=r"mask must be \[3\] bytes"):
    ops.depthwise_input_grad(gy, np.ones((1, 3, 3, 2), np.int8), np.ones(2, np.float32),
                             (3, 3), mask=np.zeros(4, np.uint8))


def test_depthwise_input_grad_rejects_bad_scales():
  gy = np.ones((1, 3, 3, 2), np.float32)
  w = np.ones((1, 3, 3, 2), np.int8)
  with pytest.raises(tf.errors.InvalidArgumentError, match=r"scales must be \[2\]"):
    ops.depthwise_input_grad(gy, w, np.ones(3, np.float32), (3, 3))


@_cases("bias_grad")
def test_bias_grad_and_fused_sgd(case):
  t = case.tensors
  grad = ops.bias_grad(t["grad_output"])
  _close(grad, t["expected_grad_bias"])
  new_bias, fused_grad = ops.bias_grad_sgd(t["grad_output"], t["bias"],
                                           case.params["learning_rate"])
  np.testing.assert_array_equal(fused_grad, grad)  # same summation order
  _close(new_bias, t["expected_bias"])


@_cases("activation_mask")
def test_relu_mask_and_masked_grad(case):
  t = case.tensors
  mask = ops.relu_mask(t["x"], relu6=bool(case.params["relu6"]))
  np.testing.assert_array_equal(mask, t["expected_mask"])
  np.testing.assert_array_equal(ops.masked_grad(t["grad_output"], mask),
                                t["expected_grad_input"])


def test_masked_grad_rejects_short_mask():
  with pytest.raises(tf.errors.InvalidArgumentError, match=r"mask must be \[2\] bytes"):
    ops.masked_grad(np.ones(9, np.float32), np.ones(1, np.uint8))


@_cases("sgd")
def test_sgd(case):
  t, p = case.tensors, case.params
  w = t["weights"]
  v = np.zeros_like(w)
  for step in (1, 2):
    g = t[f"grad_{step}"]
    if p["momentum"]:
      w, v = ops.sgd_momentum_update(w, v, g, p["learning_rate"], p["momentum"])
      np.testing.assert_allclose(v, t[f"expected_velocity_{step}"], rtol=1e-6, atol=1e-7)
    else:
      w = ops.sgd_update(w, g, p["learning_rate"])
    np.testing.assert_allclose(w, t[f"expected_weights_{step}"], rtol=1e-6, atol=1e-7)


def test_ops_work_inside_tf_function():
  # The lowering traces graphs: shapes must infer through the custom ops.
  @tf.function(input_signature=[tf.TensorSpec([2, 8, 8, 3], tf.float32),
                                tf.TensorSpec([2, 4, 4, 5], tf.float32)])
  def step(x, gy):
    return ops.conv_weight_grad_sparse(x, gy, [0, 4], 3, strides=2), ops.bias_grad(gy)

  concrete = step.get_concrete_function()
  assert concrete.structured_outputs[0].shape.as_list() == [2, 3, 3, 3]
  assert concrete.structured_outputs[1].shape.as_list() == [5]


def test_int8_input_needs_its_quantization():
  q = np.zeros((1, 3, 3, 1), np.int8)
  gy = np.ones((1, 3, 3, 1), np.float32)
  with pytest.raises(ValueError, match=r"needs input_quantization=\(scale, zero_point\)"):
    ops.conv_weight_grad_sparse(q, gy, [0], 3)
  with pytest.raises(ValueError, match="applies to int8 inputs only"):
    ops.depthwise_weight_grad(q.astype(np.float32), gy, 3, input_quantization=(0.1, 0))
  with pytest.raises(ValueError, match="scale must be positive"):
    ops.depthwise_weight_grad(q, gy, 3, input_quantization=(0.0, 0))


def test_bad_python_arguments_are_explained():
  with pytest.raises(ValueError, match="padding must be 'SAME' or 'VALID'"):
    ops.conv_weight_grad_sparse(np.ones((1, 3, 3, 1), np.float32),
                                np.ones((1, 3, 3, 1), np.float32), [0], 3, padding="full")
  with pytest.raises(ValueError, match="strides must be a positive int"):
    ops.depthwise_weight_grad(np.ones((1, 3, 3, 1), np.float32),
                              np.ones((1, 3, 3, 1), np.float32), 3, strides=0)


def test_chained_backward_of_conv_relu_matches_tf():
  # One layer of a TinyTL/TinyTrain backward pass built only from the custom
  # ops: relu mask -> masked gradient -> bias, sparse weight and input
  # gradients through the int8 frozen filter. TF autodiff is the reference.
  rng = np.random.default_rng(11)
  x = rng.standard_normal((2, 9, 9, 3)).astype(np.float32)
  q = rng.integers(-127, 128, (4, 3, 3, 3)).astype(np.int8)  # OHWI
  scales = rng.uniform(0.01, 0.05, 4).astype(np.float32)
  bias = rng.standard_normal(4).astype(np.float32)
  upstream = rng.standard_normal((2, 5, 5, 4)).astype(np.float32)
  hwio = tf.constant(np.transpose(q.astype(np.float32) * scales[:, None, None, None],
                                  (1, 2, 3, 0)))
  xv, bv = tf.constant(x), tf.constant(bias)
  with tf.GradientTape(persistent=True) as tape:
    tape.watch([xv, bv, hwio])
    pre = tf.nn.bias_add(tf.nn.conv2d(xv, hwio, 2, "SAME"), bv)
    loss = tf.reduce_sum(tf.nn.relu6(pre) * upstream)
  want_x, want_b, want_w = tape.gradient(loss, [xv, bv, hwio])

  mask = ops.relu_mask(pre, relu6=True)  # what the forward pass would store
  grad_pre = ops.masked_grad(upstream, mask)
  _close(ops.bias_grad(grad_pre), want_b)
  _close(ops.conv_input_grad(grad_pre, q, scales, (9, 9), strides=2), want_x)
  want_rows = np.transpose(want_w.numpy(), (3, 0, 1, 2))[[2, 0]]
  _close(ops.conv_weight_grad_sparse(x, grad_pre, [2, 0], 3, strides=2), want_rows)
