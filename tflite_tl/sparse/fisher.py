"""Fisher channel potentials from one forward and backward pass.

For an activation ``a`` of shape [N, H, W, C] and the gradient ``g`` of the
per-sample loss with respect to it, the Fisher potential of channel c is
(Theis et al., "Faster gaze prediction with dense networks and Fisher
pruning", 2018; BlockSwap, Turner et al., ICLR 2020; TinyTrain, Kwon et
al., ICML 2024)::

    Delta_c = 1 / (2N) * sum_n ( sum_{h,w} a[n,h,w,c] * g[n,h,w,c] ) ** 2

the second-order estimate of the loss increase when channel c is removed
(a gate on the channel, its empirical Fisher information). The layer's
potential is ``P = sum_c Delta_c``.

Which activation. A channel-sparse update that chooses the *input*
channels of a layer (the default: that is what cuts stored activations)
is scored on the layer's input and the gradient reaching it *through this
layer* (a gate on the channel as this layer reads it; other readers of the
same tensor, e.g. a residual Add, do not count). An *output*-channel choice
is scored on the layer's output and its gradient. A depthwise conv maps
channel c to channel c, and is scored on its input.

The pass replays the model's graph eagerly under a ``tf.GradientTape``
with the weights as they are (BatchNorm folded, the new head), inference
mode, softmax cross-entropy summed over samples so that each sample's
gradient is its own loss's.
"""
from typing import Dict, Mapping

import numpy as np

from tflite_tl._compat import keras
from tflite_tl._compat import tf
from tflite_tl.rewrite import graph

INPUT, OUTPUT, CHANNELS = "input", "output", "channels"
DEFAULT_CHUNK = 32


def _map_arguments(node, tensors, replace=None):
  """The node's call arguments with symbolic tensors replaced by values;
  ``replace`` = (keras tensor, value) overrides one of them."""
  def _map(obj):
    if replace is not None and obj is replace[0]:
      return replace[1]
    if keras.backend.is_keras_tensor(obj) and id(obj) in tensors:
      return tensors[id(obj)]
    return obj
  args = tf.nest.map_structure(_map, node.call_args)
  kwargs = tf.nest.map_structure(_map, node.call_kwargs)
  return args, kwargs


def _check(model, images, labels, axes):
  graph.check_functional(model, "channel_potentials")
  if len(model.inputs) != 1 or len(model.outputs) != 1:
    raise ValueError(f"channel_potentials: model '{model.name}' must have one "
                     "input and one (logits) output.")
  images = np.asarray(images, np.float32)
  labels = np.asarray(labels)
  if len(images) != len(labels) or len(images) == 0:
    raise ValueError(f"channel_potentials: the support set has {len(images)} "
                     f"images and {len(labels)} labels; give at least one "
                     "labelled sample.")
  expected = tuple(model.input_shape[1:])
  if tuple(images.shape[1:]) != expected:
    raise ValueError(f"channel_potentials: support images have shape "
                     f"{images.shape[1:]}, model '{model.name}' expects "
                     f"{expected}.")
  num_classes = int(model.output_shape[-1])
  if labels.min() < 0 or labels.max() >= num_classes:
    raise ValueError(f"channel_potentials: labels span [{labels.min()}, "
                     f"{labels.max()}] but the head has {num_classes} classes."
                     " Replace the classifier (num_classes) first.")
  names = {l.name for l in model.layers}
  unknown = sorted(set(axes) - names)
  if unknown:
    raise ValueError(f"channel_potentials: no layers {unknown} in model "
                     f"'{model.name}'.")
  bad = {n: a for n, a in axes.items() if a not in (INPUT, OUTPUT, CHANNELS)}
  if bad:
    raise ValueError(f"channel_potentials: axes must be 'input', 'output' or "
                     f"'channels', got {bad}.")
  return images, labels.astype(np.int64)


def _chunk_sums(model, nodes, axes, images, labels):
  """Per layer: sum over the chunk's samples of (sum_hw a*g)**2, per channel."""
  probes = {}
  with tf.GradientTape() as tape:
    tensors = {id(model.inputs[0]): tf.constant(images)}
    for node in nodes:
      layer = node.layer
      axis = axes.get(layer.name)
      replace = None
      if axis in (INPUT, CHANNELS):
        # A private copy of the input: its gradient is this reader's only.
        probe = tf.identity(tensors[id(node.keras_inputs[0])])
        tape.watch(probe)
        probes[layer.name] = probe
        replace = (node.keras_inputs[0], probe)
      args, kwargs = _map_arguments(node, tensors, replace)
      outputs = layer(*args, **kwargs)
      if axis == OUTPUT:
        tape.watch(outputs)
        probes[layer.name] = outputs
      for old, new in zip(tf.nest.flatten(node.outputs),
                          tf.nest.flatten(outputs)):
        tensors[id(old)] = new
    logits = tensors[id(model.outputs[0])]
    loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.constant(labels), logits=logits))
  names = sorted(probes)
  grads = tape.gradient(loss, [probes[n] for n in names])
  sums = {}
  for name, grad in zip(names, grads):
    activation = probes[name].numpy().astype(np.float64)
    if grad is None:
      sums[name] = np.zeros(activation.shape[-1])
      continue
    product = activation * grad.numpy().astype(np.float64)
    per_sample = product.reshape(product.shape[0], -1, product.shape[-1])
    sums[name] = np.square(per_sample.sum(axis=1)).sum(axis=0)
  return sums


def channel_potentials(model: keras.Model, images, labels,
                       axes: Mapping[str, str],
                       chunk_size: int = DEFAULT_CHUNK) -> Dict[str, np.ndarray]:
  """Fisher potential of every channel of the named layers.

  Args:
    model: the prepared model (new head for the labels' classes).
    images: support images [N, H, W, C] float32 in [0, 1].
    labels: int class indices [N].
    axes: ``{layer name: "input" | "output" | "channels"}``: where the
      channels are taken (see the module docstring).
    chunk_size: samples per forward/backward pass (host memory only; the
      result does not depend on it beyond float rounding).

  Returns:
    ``{layer name: float64 array [channels]}`` of Delta_c.
  """
  images, labels = _check(model, images, labels, axes)
  if chunk_size < 1:
    raise ValueError(f"chunk_size must be >= 1, got {chunk_size}.")
  nodes = graph.ordered_nodes(model)
  totals: Dict[str, np.ndarray] = {}
  for start in range(0, len(images), chunk_size):
    sums = _chunk_sums(model, nodes, axes, images[start:start + chunk_size],
                       labels[start:start + chunk_size])
    for name, value in sums.items():
      totals[name] = totals.get(name, 0.0) + value
  return {name: totals[name] / (2.0 * len(images)) for name in axes}


def layer_potentials(potentials: Mapping[str, np.ndarray]) -> Dict[str, float]:
  """``P = sum_c Delta_c`` per layer."""
  return {name: float(np.sum(v)) for name, v in potentials.items()}


__all__ = ["channel_potentials", "layer_potentials"]
