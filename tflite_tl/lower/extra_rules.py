"""Lowering rules for layers of MobileNetV3, EfficientNet and plain CNNs.

Registered on import (``tflite_tl.lower`` imports this module):

- :class:`tflite_tl.layers.HardSwish` -> HARD_SWISH (keeps its input);
- :class:`tflite_tl.layers.HardSigmoid` -> ADD/RELU6/MUL (keeps a bool mask);
- ``Multiply`` of two same-rank tensors, one possibly broadcast
  (squeeze-and-excitation) -> MUL (keeps each operand the other's gradient
  needs);
- ``Rescaling`` and ``Normalization`` (input preprocessing) -> MUL/ADD with
  constants (keep nothing);
- ``MaxPooling2D`` with non-overlapping square windows -> MAX_POOL_2D (keeps
  bool masks of each window's first maximum).

Raw TensorFlow operators in a functional model (``TFOpLambda`` layers such
as ``x + 3.0``) are not lowered: :func:`tflite_tl.rewrite.canonicalize`
turns the common ones into the layers above (:data:`CANONICALIZED_OPS`).

``swish`` and ``sigmoid`` as layer activations (``Activation("swish")``,
``Conv2D(activation="sigmoid")``) are handled by the activation table of
:mod:`tflite_tl.lower.layers`; their primitives are in
:mod:`tflite_tl.lower.ops.elementwise`.
"""
import numpy as np

from tflite_tl._compat import keras
from tflite_tl.layers.activations import HardSigmoid
from tflite_tl.layers.activations import HardSwish
from tflite_tl.lower.layers import LayerFn
from tflite_tl.lower.layers import LayerSite
from tflite_tl.lower.layers import register_layer_rule
from tflite_tl.lower.ops import elementwise as elementwise_ops
from tflite_tl.lower.ops import max_pool as max_pool_ops

CANONICALIZED_OPS = ("x + c, x - c, x * c, x / c with a Python number c (become "
                  "Rescaling), keras.applications' hard-sigmoid and "
                  "hard-swish (become HardSigmoid/HardSwish)")


def _hard_swish_rule(site: LayerSite) -> LayerFn:
  fn = elementwise_ops.make_hard_swish(need_input_grad=site.need_input_grad)
  return lambda inputs: fn(inputs[0])


def _hard_sigmoid_rule(site: LayerSite) -> LayerFn:
  fn = elementwise_ops.make_hard_sigmoid(need_input_grad=site.need_input_grad)
  return lambda inputs: fn(inputs[0])


def _multiply_rule(site: LayerSite) -> LayerFn:
  try:
    fn = elementwise_ops.make_multiply(
        in_shapes=site.in_shapes, out_shape=site.out_shapes[0],
        need_input_grads=site.need_input_grads)
  except ValueError as e:
    raise site.unsupported(str(e)) from e
  return lambda inputs: fn(*inputs)


def _rescaling_rule(site: LayerSite) -> LayerFn:
  layer = site.layer
  fn = elementwise_ops.make_affine(
      scale=np.asarray(layer.scale, np.float32),
      offset=np.asarray(layer.offset, np.float32),
      need_input_grad=site.need_input_grad)
  return lambda inputs: fn(inputs[0])


def _normalization_stats(site: LayerSite):
  """(mean, variance) of a Normalization layer in its broadcast shape."""
  layer = site.layer
  shape = list(layer._broadcast_shape)  # pylint: disable=protected-access
  if site.has_weight("mean"):
    # Adapted (or loaded) statistics are variables; read them, not the
    # tensors Keras derived from them at build time.
    mean = layer.adapt_mean.numpy()
    variance = layer.adapt_variance.numpy()
  else:
    mean, variance = layer.input_mean, layer.input_variance
  ones = np.ones([d for d in shape if d != 1] or [1], np.float32)
  mean = (np.asarray(mean, np.float32) * ones).reshape(shape)
  variance = (np.asarray(variance, np.float32) * ones).reshape(shape)
  return mean, variance


def _normalization_rule(site: LayerSite) -> LayerFn:
  layer = site.layer
  mean, variance = _normalization_stats(site)
  std = np.maximum(np.sqrt(variance), keras.backend.epsilon())
  if layer.invert:
    scale, offset = std, mean
  else:
    scale, offset = 1.0 / std, -mean / std
  fn = elementwise_ops.make_affine(scale=scale[0], offset=offset[0],
                                   need_input_grad=site.need_input_grad)
  return lambda inputs: fn(inputs[0])


def _max_pool_rule(site: LayerSite) -> LayerFn:
  layer = site.layer
  if getattr(layer, "data_format", "channels_last") != "channels_last":
    raise site.unsupported("only data_format='channels_last' is supported.")
  pool, strides = tuple(layer.pool_size), tuple(layer.strides)
  if pool != strides or pool[0] != pool[1]:
    raise site.unsupported(
        f"pool_size {pool} with strides {strides}: only square, "
        "non-overlapping max pooling (pool_size == strides) is supported.")
  try:
    fn = max_pool_ops.make_max_pool(
        in_shape=site.in_shapes[0], pool=pool[0], padding=layer.padding,
        need_input_grad=site.need_input_grad)
  except ValueError as e:
    raise site.unsupported(str(e)) from e
  return lambda inputs: fn(inputs[0])


register_layer_rule(HardSwish, _hard_swish_rule)
register_layer_rule(HardSigmoid, _hard_sigmoid_rule)
register_layer_rule(keras.layers.Multiply, _multiply_rule)
register_layer_rule(keras.layers.Rescaling, _rescaling_rule)
register_layer_rule(keras.layers.Normalization, _normalization_rule)
register_layer_rule(keras.layers.MaxPooling2D, _max_pool_rule)
