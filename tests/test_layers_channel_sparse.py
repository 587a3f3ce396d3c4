"""Channel-sparse convolutions: weights, trainability, function, config."""
import numpy as np
import pytest

from tflite_tl._compat import keras
from tflite_tl._compat import tf
from tflite_tl import layers
from tflite_tl.layers import channel_sparse


def _conv_model(axis, channels, strides=1, trainable_weight_names=None):
  inp = keras.Input((6, 6, 5))
  layer = layers.ChannelSparseConv2D(
      4, 3, strides=strides, padding="same", trained_channels=channels,
      channel_axis=axis, trainable_weight_names=trainable_weight_names,
      name="c")
  return keras.Model(inp, layer(inp)), layer


def _dw_model(channels):
  inp = keras.Input((6, 6, 5))
  layer = layers.ChannelSparseDepthwiseConv2D(
      3, padding="same", trained_channels=channels, name="d")
  return keras.Model(inp, layer(inp)), layer


def _short(weights):
  return sorted(w.name.split("/")[-1].split(":")[0] for w in weights)


@pytest.mark.parametrize("axis,shape", [("input", (3, 3, 2, 4)),
                                        ("output", (3, 3, 5, 2))])
def test_conv_weights_and_trainability(axis, shape):
  model, layer = _conv_model(axis, [3, 1])
  assert layer.trained_channels == [1, 3]
  assert tuple(layer.kernel_trained.shape) == shape
  assert tuple(layer.kernel.shape) == (3, 3, 5, 4)
  assert _short(model.trainable_weights) == ["bias", "kernel_trained"]
  assert _short(model.non_trainable_weights) == ["kernel"]


def test_depthwise_weights_and_trainability():
  model, layer = _dw_model([4, 0, 2])
  assert layer.channel_axis == "channels"
  assert tuple(layer.kernel_trained.shape) == (3, 3, 3, 1)
  assert _short(model.trainable_weights) == ["bias", "kernel_trained"]
  assert _short(model.non_trainable_weights) == ["kernel"]
  assert layer.stored_input_channels == 3


def test_bias_can_be_frozen():
  model, _ = _conv_model("input", [0], trainable_weight_names=[
      "kernel_trained"])
  assert _short(model.trainable_weights) == ["kernel_trained"]


@pytest.mark.parametrize("axis", ["input", "output"])
def test_original_slices_reproduce_the_dense_conv(axis):
  model, layer = _conv_model(axis, [0, 2], strides=2)
  rs = np.random.RandomState(0)
  kernel = rs.randn(3, 3, 5, 4).astype(np.float32)
  bias = rs.randn(4).astype(np.float32)
  kernel_axis = 2 if axis == "input" else 3
  layer.kernel.assign(kernel)
  layer.bias.assign(bias)
  layer.kernel_trained.assign(
      channel_sparse.trained_slices(kernel, [0, 2], kernel_axis))
  x = rs.rand(2, 6, 6, 5).astype(np.float32)
  dense = tf.nn.conv2d(x, kernel, 2, "SAME") + bias
  np.testing.assert_array_equal(model(x).numpy(), dense.numpy())
  # Changing kernel_trained changes exactly the spliced slices.
  layer.kernel_trained.assign(layer.kernel_trained * 0.0)
  masked = kernel.copy()
  index = [slice(None)] * 4
  index[kernel_axis] = [0, 2]
  masked[tuple(index)] = 0.0
  np.testing.assert_allclose(
      model(x).numpy(), (tf.nn.conv2d(x, masked, 2, "SAME") + bias).numpy(),
      rtol=1e-6, atol=1e-6)


def test_depthwise_reproduces_the_dense_conv():
  model, layer = _dw_model([1, 4])
  rs = np.random.RandomState(1)
  kernel = rs.randn(3, 3, 5, 1).astype(np.float32)
  layer.kernel.assign(kernel)
  layer.bias.assign(np.zeros(5, np.float32))
  layer.kernel_trained.assign(kernel[:, :, [1, 4]])
  x = rs.rand(1, 6, 6, 5).astype(np.float32)
  np.testing.assert_array_equal(
      model(x).numpy(),
      tf.nn.depthwise_conv2d(x, kernel, [1, 1, 1, 1], "SAME").numpy())


def test_gradient_reaches_only_the_trained_slices():
  model, layer = _conv_model("input", [1, 3])
  x = np.random.RandomState(2).rand(2, 6, 6, 5).astype(np.float32)
  with tf.GradientTape() as tape:
    loss = tf.reduce_sum(tf.square(model(x)))
  grads = tape.gradient(loss, model.trainable_weights)
  assert all(g is not None for g in grads)
  with tf.GradientTape() as tape:
    tape.watch(layer.kernel)
    loss = tf.reduce_sum(tf.square(model(x)))
  full = tape.gradient(loss, layer.kernel)
  # The frozen kernel's trained slices are bypassed: no gradient through them.
  np.testing.assert_array_equal(full.numpy()[:, :, [1, 3]], 0.0)


def test_config_round_trip_and_save(tmp_path):
  model, layer = _conv_model("output", [2])
  config = layer.get_config()
  assert config["trained_channels"] == [2]
  assert config["channel_axis"] == "output"
  clone = keras.Model.from_config(model.get_config())
  assert _short(clone.trainable_weights) == ["bias", "kernel_trained"]
  x = np.random.RandomState(3).rand(1, 6, 6, 5).astype(np.float32)
  layer.kernel_trained.assign(np.ones(layer.kernel_trained.shape, np.float32))
  path = str(tmp_path / "m.keras")
  model.save(path)
  loaded = keras.models.load_model(path)
  np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())
  dw, _ = _dw_model([0])
  assert keras.Model.from_config(dw.get_config()).layers[-1].trained_channels \
      == [0]


@pytest.mark.parametrize("kwargs,message", [
    (dict(trained_channels=[]), "empty"),
    (dict(trained_channels=[0, 0]), "duplicates"),
    (dict(trained_channels=[9]), "outside"),
    (dict(trained_channels=[0], channel_axis="rows"), "channel_axis"),
    (dict(trained_channels=[0], groups=5), "grouped"),
])
def test_bad_configuration_is_named(kwargs, message):
  with pytest.raises(ValueError, match=message):
    layer = layers.ChannelSparseConv2D(5, 1, name="bad", **kwargs)
    layer(keras.Input((4, 4, 5)))


def test_class_lookup():
  assert channel_sparse.channel_sparse_class_for(
      keras.layers.Conv2D(2, 1)) is layers.ChannelSparseConv2D
  assert channel_sparse.channel_sparse_class_for(
      layers.DepthwiseConv2D(3)) is layers.ChannelSparseDepthwiseConv2D
  assert channel_sparse.channel_sparse_class_for(
      keras.layers.Conv2D(2, 1, groups=2)) is None
  assert channel_sparse.channel_sparse_class_for(
      keras.layers.Dense(2)) is None
