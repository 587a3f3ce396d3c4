"""The layers of a model as the sparse-update selection sees them.

One :class:`LayerInfo` per computation node of a prepared model (BatchNorm
folded, new head): shapes, parameter and MAC counts, what the layer stores
when a gradient passes through it with its weights frozen, and which nodes
lie downstream of it (those a gradient starting there flows through).
Candidates for a channel-sparse update are the Conv2D (one group) and
DepthwiseConv2D (multiplier 1) layers; the classifier always trains fully.
"""
import dataclasses
from typing import Dict, List, Optional, Tuple

import numpy as np

from tflite_tl._compat import keras
from tflite_tl._compat import tf
from tflite_tl.rewrite import graph
from tflite_tl.rewrite import head as head_lib
from tflite_tl.rewrite.blocks import is_relu

CONV, DEPTHWISE, DENSE, OTHER = "conv", "depthwise", "dense", "other"
ACTIVATION_BYTES = 4  # float32 activations, as the lowered train step

# Layers that keep nothing for their backward pass when their weights are
# frozen (the memory model's rules, tflite_tl.memory.training_memory).
_NO_SAVE = (keras.layers.AveragePooling2D, keras.layers.GlobalAveragePooling2D,
            keras.layers.ZeroPadding2D, keras.layers.Cropping2D,
            keras.layers.Reshape, keras.layers.Flatten,
            keras.layers.UpSampling2D, keras.layers.Resizing,
            keras.layers.Concatenate, keras.layers.Add,
            keras.layers.Subtract, keras.layers.Rescaling,
            keras.layers.Permute, keras.layers.BatchNormalization,
            keras.layers.Conv2D, keras.layers.DepthwiseConv2D,
            keras.layers.Dense)


@dataclasses.dataclass(frozen=True)
class LayerInfo:
  """One node of the model (shapes per sample, without the batch).

  ``grad_through_bytes``: bytes per sample the layer stores for the
  backward pass when a gradient passes through it but its weights are
  frozen (a ReLU's mask at 1 bit per element, ``is_mask``; nothing for a
  frozen conv...).
  ``grad_buffer_bytes``: bytes per sample of the gradient buffers while
  the backward pass crosses the layer: its output and input gradients,
  plus the zero-inserted output gradient of a strided convolution.
  ``held_bytes``: bytes per sample held while the layer runs in inference:
  its inputs and output (a ReLU runs fused into its producer: nothing of
  its own) and ``live_bytes``: the tensors computed earlier that later
  layers still read (in the backward pass: their gradients, still being
  summed from those readers).
  ``downstream``: bit mask over node indices reached from its output.
  """
  index: int
  name: str
  kind: str
  in_shape: Tuple[int, ...]
  out_shape: Tuple[int, ...]
  kernel_shape: Optional[Tuple[int, ...]]
  has_bias: bool
  macs: int
  grad_through_bytes: float
  is_mask: bool
  grad_buffer_bytes: float
  held_bytes: float
  live_bytes: float
  downstream: int

  @property
  def params(self) -> int:
    """Kernel parameters (the |W| of TinyTrain's score)."""
    return int(np.prod(self.kernel_shape)) if self.kernel_shape else 0

  @property
  def in_channels(self) -> int:
    return int(self.in_shape[-1])

  @property
  def out_channels(self) -> int:
    return int(self.out_shape[-1])

  @property
  def spatial_in(self) -> int:
    return int(np.prod(self.in_shape[:-1]))

  @property
  def spatial_out(self) -> int:
    return int(np.prod(self.out_shape[:-1]))


@dataclasses.dataclass(frozen=True)
class Inventory:
  """All nodes of a model in forward order, the candidates and the head."""
  model_name: str
  layers: Tuple[LayerInfo, ...]
  candidates: Tuple[str, ...]
  head: str

  def __getitem__(self, name: str) -> LayerInfo:
    for info in self.layers:
      if info.name == name:
        return info
    raise KeyError(f"no layer '{name}' in model '{self.model_name}'.")

  def names(self) -> List[str]:
    return [l.name for l in self.layers]


def _shape(tensor, layer_name: str) -> Tuple[int, ...]:
  shape = tuple(tensor.shape[1:])
  if any(d is None for d in shape):
    raise graph.UnsupportedModelError(
        f"layer '{layer_name}' has a tensor of unknown shape {shape}; build "
        "the model with a fixed input shape (keras.Input(shape=(H, W, C))).")
  return tuple(int(d) for d in shape)


def _kind(layer) -> str:
  if isinstance(layer, keras.layers.DepthwiseConv2D):
    return DEPTHWISE
  if isinstance(layer, keras.layers.Conv2D):
    return CONV
  if isinstance(layer, keras.layers.Dense):
    return DENSE
  return OTHER


def _kernel_shape(layer, kind) -> Optional[Tuple[int, ...]]:
  if kind == OTHER:
    return None
  kernel = getattr(layer, "kernel", None)
  if kernel is None:
    kernel = layer.depthwise_kernel
  return tuple(int(d) for d in kernel.shape)


def _macs(kind, kernel_shape, out_shape) -> int:
  if kind in (CONV, DEPTHWISE):
    # Conv: every output element sums kh*kw*Cin/groups products (the kernel
    # shape already has Cin/groups); depthwise: kh*kw per output element.
    per_output = int(np.prod(kernel_shape[:3]))
    if kind == DEPTHWISE:
      per_output = int(np.prod(kernel_shape[:2]))
    return int(np.prod(out_shape)) * per_output
  if kind == DENSE:
    return int(kernel_shape[0]) * int(kernel_shape[1])
  return 0


def _grad_through_bytes(layer, in_shapes) -> float:
  elements = [float(np.prod(s)) for s in in_shapes]
  if is_relu(layer) or isinstance(layer, keras.layers.Dropout):
    return elements[0] / 8.0  # a 1-bit mask
  if isinstance(layer, _NO_SAVE):
    return 0.0
  # Norms with data statistics, sigmoid/h-swish/softmax, max pooling,
  # products and unknown layers keep their full inputs (conservative).
  return sum(elements) * ACTIVATION_BYTES


def _grad_buffer_bytes(layer, kind, in_shapes, out_shape) -> float:
  elements = sum(float(np.prod(s)) for s in in_shapes) + float(
      np.prod(out_shape))
  strides = getattr(layer, "strides", (1, 1))
  if kind in (CONV, DEPTHWISE) and max(strides) > 1:
    # The input gradient correlates a zero-inserted, padded copy of the
    # output gradient: input-sized, with the output's channels.
    elements += float(np.prod(in_shapes[0][:-1])) * out_shape[-1]
  return elements * ACTIVATION_BYTES


def _held_bytes(model, nodes) -> Tuple[List[float], List[float]]:
  """Per node: inference bytes per sample held while it runs, and the
  part of it that is live tensors of earlier layers."""
  size = {id(t): float(np.prod(t.shape[1:])) * ACTIVATION_BYTES
          for t in model.inputs}
  last_use = {}
  for i, node in enumerate(nodes):
    for t in node.keras_inputs:
      last_use[id(t)] = i
    for t in tf.nest.flatten(node.outputs):
      size[id(t)] = float(np.prod(t.shape[1:])) * ACTIVATION_BYTES
  for t in model.outputs:
    last_use[id(t)] = len(nodes)
  produced = [id(t) for t in model.inputs]
  held, lives = [], []
  for i, node in enumerate(nodes):
    inputs = {id(t) for t in node.keras_inputs}
    outputs = [id(t) for t in tf.nest.flatten(node.outputs)]
    own = 0.0 if is_relu(node.layer) else (
        sum(size[t] for t in inputs) + sum(size[t] for t in outputs))
    live = sum(size[t] for t in produced
               if t not in inputs and last_use.get(t, -1) > i)
    held.append(own + live)
    lives.append(live)
    produced.extend(outputs)
  return held, lives


def _is_candidate(layer, kind) -> bool:
  if kind == CONV:
    return layer.groups == 1
  if kind == DEPTHWISE:
    return layer.depth_multiplier == 1
  return False


def model_inventory(model: keras.Model) -> Inventory:
  """The :class:`Inventory` of a flat functional model with a Dense head.

  Raises:
    UnsupportedModelError: subclassed/nested models, unknown shapes, or a
      candidate layer called more than once.
  """
  graph.check_functional(model, "sparse update")
  classifier = head_lib.find_classifier(model)
  nodes = graph.ordered_nodes(model)
  index_of = {id(n): i for i, n in enumerate(nodes)}
  readers = graph.consumers(model)
  downstream = [0] * len(nodes)
  for i in reversed(range(len(nodes))):
    mask = 0
    for out in tf.nest.flatten(nodes[i].outputs):
      for reader in readers.get(id(out), []):
        j = index_of[id(reader)]
        mask |= (1 << j) | downstream[j]
    downstream[i] = mask
  held, live = _held_bytes(model, nodes)
  infos, candidates, seen = [], [], set()
  for i, node in enumerate(nodes):
    layer = node.layer
    in_shapes = [_shape(t, layer.name) for t in node.keras_inputs]
    out_shape = _shape(graph.node_output(node), layer.name)
    kind = _kind(layer)
    kernel_shape = _kernel_shape(layer, kind)
    infos.append(LayerInfo(
        index=i, name=layer.name, kind=kind, in_shape=in_shapes[0],
        out_shape=out_shape, kernel_shape=kernel_shape,
        has_bias=bool(getattr(layer, "use_bias", False)),
        macs=_macs(kind, kernel_shape, out_shape),
        grad_through_bytes=_grad_through_bytes(layer, in_shapes),
        is_mask=is_relu(layer) or isinstance(layer, keras.layers.Dropout),
        grad_buffer_bytes=_grad_buffer_bytes(layer, kind, in_shapes,
                                             out_shape),
        held_bytes=held[i], live_bytes=live[i],
        downstream=downstream[i]))
    if layer is not classifier and _is_candidate(layer, kind):
      if layer.name in seen:
        raise graph.UnsupportedModelError(
            f"layer '{layer.name}' is called more than once; a sparse update "
            "needs each convolution to be used once (unshare the layer).")
      candidates.append(layer.name)
    seen.add(layer.name)
  return Inventory(model.name, tuple(infos), tuple(candidates),
                   classifier.name)


def by_name(inventory: Inventory) -> Dict[str, LayerInfo]:
  return {l.name: l for l in inventory.layers}
