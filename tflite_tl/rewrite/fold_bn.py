"""Folding BatchNormalization into the preceding Conv2D/DepthwiseConv2D/Dense.

With frozen statistics a BatchNorm is the affine map
``y = gamma * (z - mean) / sqrt(var + eps) + beta``. When ``z`` is the output
of a linear layer ``z = W x + b`` that nothing else reads, the pair equals one
linear layer with ``W' = W * s`` (per output channel) and
``b' = (b - mean) * s + beta``, ``s = gamma / sqrt(var + eps)``. This is what
runs on the device for every method that does not train norm layers, and it
turns TinyTL's "train the BatchNorm bias" into "train the conv bias".
"""
import numpy as np

from tflite_tl._compat import keras
from tflite_tl.rewrite import graph

_LINEAR = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D,
           keras.layers.Dense)


def _bn_scale_shift(bn):
  weights = {graph.weight_short_name(w): w.numpy() for w in bn.weights}
  variance = weights["moving_variance"]
  gamma = weights.get("gamma", np.ones_like(variance))
  beta = weights.get("beta", np.zeros_like(variance))
  scale = gamma / np.sqrt(variance + bn.epsilon)
  return scale, beta - weights["moving_mean"] * scale


def _foldable_pairs(model):
  """Maps id(linear layer) -> its BatchNorm for every foldable pair."""
  readers = graph.consumers(model)
  pairs = {}
  for node in graph.ordered_nodes(model):
    bn = node.layer
    if not isinstance(bn, keras.layers.BatchNormalization):
      continue
    axis = bn.axis if isinstance(bn.axis, int) else (
        bn.axis[0] if len(bn.axis) == 1 else None)
    rank = len(node.keras_inputs[0].shape)
    if axis is None or axis not in (-1, rank - 1):
      continue  # Only channels-last BatchNorm maps onto output channels.
    source = node.keras_inputs[0]
    linear = graph.producer(source)
    if (not isinstance(linear, _LINEAR) or len(linear._inbound_nodes) != 1  # pylint: disable=protected-access
        or len(bn._inbound_nodes) != 1  # pylint: disable=protected-access
        or len(readers.get(id(source), [])) != 1
        or keras.activations.serialize(linear.activation) != "linear"
        or getattr(linear, "data_format", "channels_last") != "channels_last"):
      continue
    pairs[id(linear)] = bn
  return pairs


def _folded_weights(linear, bn):
  scale, shift = _bn_scale_shift(bn)
  weights = {graph.weight_short_name(w): w.numpy() for w in linear.weights}
  if isinstance(linear, keras.layers.DepthwiseConv2D):
    kernel = weights["depthwise_kernel"]
    kernel = kernel * scale.reshape(kernel.shape[2], kernel.shape[3])
  else:
    kernel = weights["kernel"] * scale
  bias = weights.get("bias", np.zeros_like(scale))
  kernel_name = ("depthwise_kernel"
                 if isinstance(linear, keras.layers.DepthwiseConv2D)
                 else "kernel")
  return {kernel_name: kernel.astype(np.float32),
          "bias": (bias * scale + shift).astype(np.float32)}


def fold_batch_norm(model: keras.Model) -> keras.Model:
  """Returns a copy of ``model`` with every foldable BatchNorm folded.

  A BatchNorm is folded when it normalises the last axis and directly follows
  a Conv2D, DepthwiseConv2D or Dense layer (with linear activation) whose
  output nothing else reads; other BatchNorms are kept. Folded layers get
  ``use_bias=True`` and keep their name and class. Outputs match the
  original model's inference outputs up to float rounding.
  """
  graph.check_functional(model, "fold_batch_norm")
  pairs = _foldable_pairs(model)
  folded_bns = {id(bn) for bn in pairs.values()}

  def clone_layer(layer):
    if id(layer) in pairs:
      return graph.copy_layer(layer, use_bias=True)
    return graph.copy_layer(layer)

  def node_hook(node, ctx):
    if id(node.layer) in folded_bns:
      return ctx.new_tensor(node.keras_inputs[0])
    return None

  def weight_source(old, new):
    if id(old) in pairs:
      return _folded_weights(old, pairs[id(old)])
    return graph.named_weights(old)

  return graph.rebuild(model, clone_layer=clone_layer, node_hook=node_hook,
                       weight_source=weight_source)
