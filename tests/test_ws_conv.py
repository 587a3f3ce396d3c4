import numpy as np
import pytest

from tflite_tl._compat import keras
from tflite_tl._compat import tf
from tflite_tl.layers.ws_conv import WSConv2D
from tflite_tl.layers.ws_conv import standardize_kernel


def _numpy_standardize(w, eps):
  mean = w.mean(axis=(0, 1, 2), keepdims=True)
  var = ((w - mean) ** 2).mean(axis=(0, 1, 2), keepdims=True)
  return (w - mean) / np.sqrt(var + eps)


def _model(**kwargs):
  inp = keras.Input((6, 6, 4))
  layer = WSConv2D(6, 3, padding="same", groups=2, name="ws", **kwargs)
  return keras.Model(inp, layer(inp)), layer


def test_standardized_kernel_has_zero_mean_unit_variance_per_output_channel():
  w = np.random.RandomState(0).randn(3, 3, 2, 5).astype(np.float32) * 7 + 3
  got = standardize_kernel(tf.constant(w), 1e-5).numpy()
  np.testing.assert_allclose(got, _numpy_standardize(w, 1e-5), atol=1e-5)
  np.testing.assert_allclose(got.mean(axis=(0, 1, 2)), 0, atol=1e-5)
  np.testing.assert_allclose(got.var(axis=(0, 1, 2)), 1, atol=1e-3)


def test_output_equals_grouped_conv_with_standardized_kernel():
  model, layer = _model(use_bias=True)
  rng = np.random.RandomState(1)
  layer.bias.assign(rng.randn(6).astype(np.float32))
  x = rng.rand(2, 6, 6, 4).astype(np.float32)
  w_hat = _numpy_standardize(layer.kernel.numpy(), 1e-5)
  # Grouped conv by hand: group g sees input channels [2g, 2g+2) and
  # produces output channels [3g, 3g+3).
  want = np.concatenate([
      tf.nn.conv2d(x[..., 2 * g:2 * g + 2], w_hat[..., 3 * g:3 * g + 3],
                   1, "SAME").numpy() for g in range(2)], axis=-1)
  want += layer.bias.numpy()
  np.testing.assert_allclose(model(x).numpy(), want, atol=1e-5)


def test_output_is_invariant_to_kernel_scale_and_shift():
  # A tiny epsilon: with the default, epsilon/var (~3e-4 for a Glorot kernel)
  # would make the invariance only approximate.
  model, layer = _model(use_bias=False, epsilon=1e-10)
  x = np.random.RandomState(2).rand(1, 6, 6, 4).astype(np.float32)
  before = model(x).numpy()
  layer.kernel.assign(layer.kernel * 10.0 + 0.5)
  np.testing.assert_allclose(model(x).numpy(), before, atol=1e-4)


def test_fan_in_one_is_defined():
  inp = keras.Input((4, 4, 2))
  out = WSConv2D(2, 1, groups=2, use_bias=False)(inp)
  x = np.ones((1, 4, 4, 2), np.float32)
  assert np.all(np.isfinite(keras.Model(inp, out)(x).numpy()))


def test_gradient_flows_through_standardization():
  model, layer = _model(use_bias=False)
  x = np.random.RandomState(3).rand(1, 6, 6, 4).astype(np.float32)
  with tf.GradientTape() as tape:
    loss = tf.reduce_sum(model(x) ** 2)
  grad = tape.gradient(loss, layer.kernel).numpy()
  # Standardisation removes the per-channel mean direction from the gradient.
  np.testing.assert_allclose(grad.sum(axis=(0, 1, 2)), 0, atol=1e-3)


def test_config_round_trip_and_save_load(tmp_path):
  model, _ = _model(use_bias=False, epsilon=1e-3, trainable_weight_names=[])
  clone = keras.Model.from_config(model.get_config())
  ws = clone.get_layer("ws")
  assert isinstance(ws, WSConv2D)
  assert ws.epsilon == 1e-3 and ws.groups == 2
  assert clone.trainable_weights == []
  path = str(tmp_path / "ws.keras")
  model.save(path)
  loaded = keras.models.load_model(path)
  x = np.random.RandomState(4).rand(1, 6, 6, 4).astype(np.float32)
  np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())


def test_rejects_non_positive_epsilon():
  with pytest.raises(ValueError, match="epsilon must be > 0"):
    WSConv2D(4, 1, epsilon=0.0)
