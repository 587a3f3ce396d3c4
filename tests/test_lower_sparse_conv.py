"""Channel-sparse convs lowered: gradients against Keras, what is kept for
the backward pass, where the backward pass stops, and TFLM parity."""
import numpy as np
import pytest

from tflite_tl._compat import tf
from tflite_tl import layers
from tflite_tl import lower
from tflite_tl import rewrite
from tflite_tl import sparse
from tflite_tl.verify import train_step as verify
from tflite_tl.lower.convert import convert_function
from tflite_tl.lower.module import TrainStepModule
from tflite_tl.lower.ops import sparse_conv
import sparse_fixtures

CASES = [  # (layer kwargs, channel axis, channels)
    (dict(filters=6, kernel_size=3, strides=1, padding="same"), "input",
     [0, 3]),
    (dict(filters=6, kernel_size=3, strides=2, padding="same"), "input",
     [1, 2, 4]),
    (dict(filters=6, kernel_size=3, strides=2, padding="valid"), "output",
     [0, 5]),
    (dict(filters=6, kernel_size=1), "input", [4]),
    (dict(filters=6, kernel_size=1), "output", [0, 1, 2, 3, 4, 5]),
]


def _keras_grads(layer, x, dy):
  x = tf.constant(x)
  with tf.GradientTape() as tape:
    tape.watch(x)
    loss = tf.reduce_sum(layer(x) * dy)
  dx, dk, db = tape.gradient(loss, [x, layer.kernel_trained, layer.bias])
  return layer(x).numpy(), dx.numpy(), dk.numpy(), db.numpy()


def _ours(fn, x, frozen, trained, bias, dy):
  x, trained, bias = (tf.constant(v) for v in (x, trained, bias))
  with tf.GradientTape() as tape:
    tape.watch([x, trained, bias])
    y = fn(x, tf.constant(frozen), trained, bias)
    loss = tf.reduce_sum(y * dy)
  grads = tape.gradient(loss, [x, trained, bias])
  return [y.numpy()] + [g.numpy() for g in grads]


def _fill(layer, rs):
  for w in layer.weights:
    w.assign(rs.randn(*w.shape).astype(np.float32))


@pytest.mark.parametrize("kwargs,axis,channels", CASES)
def test_conv_gradients_match_keras(kwargs, axis, channels):
  rs = np.random.RandomState(0)
  layer = layers.ChannelSparseConv2D(trained_channels=channels,
                                     channel_axis=axis, **kwargs)
  x = rs.rand(2, 9, 9, 5).astype(np.float32)
  layer(x)
  _fill(layer, rs)
  dy = rs.randn(*layer(x).shape).astype(np.float32)
  want = _keras_grads(layer, x, dy)
  fn = sparse_conv.make_channel_sparse_conv2d(
      strides=kwargs.get("strides", 1),
      padding=kwargs.get("padding", "valid").upper(), in_shape=list(x.shape),
      kernel_shape=layer.kernel.shape.as_list(), channels=channels,
      channel_axis=axis, need_input_grad=True, train_kernel=True,
      train_bias=True, has_bias=True)
  got = _ours(fn, x, layer.kernel.numpy(), layer.kernel_trained.numpy(),
              layer.bias.numpy(), dy)
  for w, g in zip(want, got):
    np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-5 * np.abs(w).max())


@pytest.mark.parametrize("strides", [1, 2])
def test_depthwise_gradients_match_keras(strides):
  rs = np.random.RandomState(1)
  layer = layers.ChannelSparseDepthwiseConv2D(
      3, strides=strides, padding="same", trained_channels=[0, 2, 5])
  x = rs.rand(2, 8, 8, 6).astype(np.float32)
  layer(x)
  _fill(layer, rs)
  dy = rs.randn(*layer(x).shape).astype(np.float32)
  want = _keras_grads(layer, x, dy)
  fn = sparse_conv.make_channel_sparse_depthwise(
      strides=strides, padding="SAME", in_shape=list(x.shape),
      kernel_shape=layer.kernel.shape.as_list(), channels=[0, 2, 5],
      need_input_grad=True, train_kernel=True, train_bias=True,
      has_bias=True)
  got = _ours(fn, x, layer.kernel.numpy(), layer.kernel_trained.numpy(),
              layer.bias.numpy(), dy)
  for w, g in zip(want, got):
    np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-5 * np.abs(w).max())


def _rewritten(chosen, axis="input"):
  model = sparse_fixtures.mbconv_model()
  cm = sparse.CostModel(sparse.model_inventory(model), 2, 0.0, axis)
  selection = sparse.build_selection(
      method="tinytrain", criterion="fisher", model_cost=cm, chosen=chosen,
      rankings={n: list(range(cm.channels(n)))[::-1] for n in chosen},
      bias_layers=list(chosen), seed=0)
  return rewrite.apply_selection(model, selection)


def test_backward_stops_at_the_earliest_chosen_layer():
  # Only b2_dw trains: forward depthwise convs (2) + its kernel gradient (1);
  # no input gradient of b2_dw, nothing for block 1.
  model = _rewritten({"b2_dw": 4})
  module = TrainStepModule(model, batch_size=2, learning_rate=0.1)
  ops = lower.op_counts(convert_function(module, module.train_step))
  assert ops["DEPTHWISE_CONV_2D"] == 3
  # Kept input channels and the output gradient, gathered on channels,
  # plus the effective kernel for the forward pass.
  assert ops["GATHER"] == 3
  lower.check_builtin_only(convert_function(module, module.train_step))


def test_input_axis_keeps_only_the_chosen_channels():
  """The only tensors of the converted step shaped like b2_project's input
  that outlive the forward pass are the gathered [N,H,W,K] channels."""
  from tensorflow.lite.python import schema_py_generated as schema  # pylint: disable=import-outside-toplevel
  model = _rewritten({"b2_project": 3})
  module = TrainStepModule(model, batch_size=2, learning_rate=0.1)
  tflite = convert_function(module, module.train_step)
  fb = schema.Model.GetRootAsModel(tflite, 0)
  sg = fb.Subgraphs(0)
  shapes = {tuple(sg.Tensors(i).ShapeAsNumpy()) for i in range(
      sg.TensorsLength()) if sg.Tensors(i).ShapeLength()}
  assert (2, 6, 6, 3) in shapes  # the kept channels


@pytest.mark.parametrize("chosen,axis", [
    ({"b1_dw": 5, "b2_expand": 3, "b2_project": 16}, "input"),
    ({"stem": 2, "b2_expand": 16}, "output"),
])
def test_train_steps_match_tf_in_tflm(chosen, axis):
  model = _rewritten(chosen, axis)
  lowered = lower.lower_model(model, batch_size=2, learning_rate=0.05)
  batches = verify.random_batches(0, 4, 2, lowered.module.image_shape, 3)
  result = verify.compare(lowered, batches, arena=False)
  assert result["parity"] == "exact", result
  assert {p.name for p in lowered.param_specs} >= {
      f"{n}/kernel_trained" for n in chosen}
