"""Analytic training memory of a Keras model, following TinyTL's accounting.

Model (Cai et al., "TinyTL: Reduce Memory, Not Parameters for Efficient
On-Device Learning", NeurIPS 2020, Sec. 2 and Table 2; the same rules as the
authors' memory profiler):

* Parameters: trainable weights at ``trainable_param_bits`` (32), frozen
  weights at ``frozen_param_bits`` (8, i.e. quantised).
* Activations saved for the backward pass, per layer, depending on what is
  trained:

  - Conv / depthwise conv / dense: the input, only if the kernel trains
    (a bias gradient needs no activation). A channel-sparse conv
    (:mod:`tflite_tl.layers.channel_sparse`) stores only the input channels
    its trained kernel slices read (all of them for an output-axis choice).
  - BatchNorm (frozen statistics, an affine map): the input, only if gamma
    trains. GroupNorm / LayerNorm (statistics from the data): the input if
    gamma trains or a gradient must flow through it.
  - ReLU / ReLU6 / Dropout / hard-sigmoid: a 1-bit mask, if a gradient
    flows through; 2-D max pooling a 1-bit mask of where each window's
    maximum is.
  - Other activations (sigmoid, swish, h-swish, softmax...): the full input,
    if a gradient flows through; nothing for a softmax producing the model's
    output (training uses the logits). An activation fused into a
    conv/dense (``activation="swish"``) counts the same, on its output.
  - Products (squeeze-and-excitation's Multiply): each operand that the
    gradient of another operand needs (both, when both need a gradient).
  - Pooling, padding, reshapes, upsampling, Add, input preprocessing
    (Rescaling, Normalization): nothing.

  A gradient flows through a layer when some weight upstream of it trains.
* Working buffers of the running layer (TinyTL's profiler): conv input +
  output / groups (a depthwise conv works channel by channel), dense input +
  output, norms and activations in place (input only), Add in place (its
  inputs), other layers input + output.
* Tensors computed earlier that a later layer still reads (shortcuts, lite
  residual inputs) stay live.
* Peak activation = max over layers, in forward order, of working buffers +
  activations saved so far + live tensors. Total = peak x batch + params.

This is an analytic model, not a measurement; it counts what must be held,
not how a runtime lays it out.
"""
from typing import Dict, List, Tuple

import numpy as np

from tflite_tl._compat import keras
from tflite_tl._compat import tf
from tflite_tl.layers.activations import HardSigmoid
from tflite_tl.layers.activations import HardSwish
from tflite_tl.layers.channel_sparse import ChannelSparseMixin
from tflite_tl.layers.channel_sparse import TRAINED_KERNEL
from tflite_tl.memory import report as report_lib
from tflite_tl.rewrite import graph
from tflite_tl.rewrite.blocks import is_relu

_KERNELS = ("kernel", "depthwise_kernel")
_FROZEN_STAT_NORMS = (keras.layers.BatchNormalization,)
_DATA_STAT_NORMS = (keras.layers.GroupNormalization,
                    keras.layers.LayerNormalization)
_MASK_LAYERS = (keras.layers.Dropout,)
_FULL_INPUT_LAYERS = (keras.layers.Activation, keras.layers.Softmax,
                      keras.layers.MaxPooling1D,
                      keras.layers.PReLU, keras.layers.ELU, HardSwish)
_PRODUCT_LAYERS = (keras.layers.Multiply,)
# Fused activations whose backward pass needs only a mask; the others (and
# a fused softmax that is not the model's output) keep a full tensor.
_MASK_ACTIVATIONS = ("relu", "relu6")
_NO_SAVE_LAYERS = (keras.layers.AveragePooling2D, keras.layers.AveragePooling1D,
                   keras.layers.GlobalAveragePooling2D,
                   keras.layers.GlobalAveragePooling1D,
                   keras.layers.ZeroPadding2D, keras.layers.Cropping2D,
                   keras.layers.Reshape, keras.layers.Flatten,
                   keras.layers.UpSampling2D, keras.layers.Resizing,
                   keras.layers.Concatenate, keras.layers.Add,
                   keras.layers.Subtract, keras.layers.Rescaling,
                   keras.layers.Permute, keras.layers.Normalization)


def _elements(tensor, layer_name: str) -> Tuple[Tuple[int, ...], int]:
  shape = tuple(tensor.shape[1:])
  if any(d is None for d in shape):
    raise ValueError(
        f"training_memory: layer '{layer_name}' has a tensor of unknown shape "
        f"{shape}; build the model with a fixed input shape "
        "(keras.Input(shape=(H, W, C))).")
  return shape, int(np.prod(shape, dtype=np.int64))


def _kind(layer) -> str:
  if isinstance(layer, keras.layers.DepthwiseConv2D):
    return "depthwise"
  if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv1D)):
    return "conv"
  if isinstance(layer, keras.layers.Dense):
    return "dense"
  if isinstance(layer, _FROZEN_STAT_NORMS):
    return "norm"
  if isinstance(layer, _DATA_STAT_NORMS):
    return "norm_stats"
  if is_relu(layer):
    return "relu"
  if isinstance(layer, HardSigmoid):
    return "hard_sigmoid"
  if isinstance(layer, keras.layers.MaxPooling2D):
    return "max_pool"
  if isinstance(layer, _MASK_LAYERS):
    return "dropout"
  if isinstance(layer, keras.layers.Add):
    return "add"
  if isinstance(layer, _PRODUCT_LAYERS):
    return "multiply"
  if isinstance(layer, _FULL_INPUT_LAYERS):
    return "activation"
  if isinstance(layer, _NO_SAVE_LAYERS):
    return "reshape"
  return "other"


class _Accountant:
  """Walks the graph once in forward order and builds the records."""

  def __init__(self, model, activation_bits):
    self.model = model
    self.act_bytes = activation_bits / 8
    self.activation_bits = activation_bits
    self.nodes = graph.ordered_nodes(model)
    self.needs_grad: Dict[int, bool] = {id(t): False for t in model.inputs}
    self.last_use: Dict[int, int] = {}
    self.sizes: Dict[int, Tuple[Tuple[int, ...], int, str]] = {}
    for t in model.inputs:
      self.sizes[id(t)] = _elements(t, graph.producer(t).name) + (
          graph.producer(t).name,)
    for index, node in enumerate(self.nodes):
      for t in node.keras_inputs:
        self.last_use[id(t)] = index
    for t in tf.nest.flatten(model.outputs):
      self.last_use[id(t)] = len(self.nodes)

  def _record(self, layer, tensor_name, shape, elements, bits, role, why):
    return report_lib.TensorRecord(
        layer=layer.name, tensor=tensor_name, shape=shape, bits=int(bits),
        bytes=elements * bits / 8, role=role, why=why)

  def saved(self, node, kind, trains, grad_through):
    """Records of what ``node`` keeps for the backward pass."""
    layer = node.layer
    inputs = node.keras_inputs
    shape, n = self.sizes[id(inputs[0])][:2]
    full = self.activation_bits
    save = lambda why, bits=full: [self._record(  # noqa: E731
        layer, f"{layer.name}:input", shape, n, bits, report_lib.SAVED, why)]
    if kind in ("conv", "depthwise", "dense"):
      records = self._fused_activation(node, trains, grad_through)
      if isinstance(layer, ChannelSparseMixin) and TRAINED_KERNEL in trains:
        kept = layer.stored_input_channels
        return [self._record(
            layer, f"{layer.name}:input", shape[:-1] + (kept,),
            n * kept / shape[-1], full, report_lib.SAVED,
            f"{kept} of {shape[-1]} input channels, for the gradient of the "
            "trained kernel channels")] + records
      if trains & set(_KERNELS):
        return save("input, for the kernel gradient (kernel trains)") + records
      return records
    if kind == "norm":
      if "gamma" in trains:
        return save("input, for the gamma gradient (gamma trains)")
      return []
    if kind == "norm_stats":
      if "gamma" in trains or grad_through:
        return save("input, to recompute the normalised tensor (statistics "
                    "come from the data)")
      return []
    if kind in ("relu", "dropout", "hard_sigmoid", "max_pool"):
      if grad_through:
        return save("1-bit mask of where the gradient passes", bits=1)
      return []
    if kind == "activation":
      if self._is_output_softmax(node):
        return []  # Training uses the logits (see tflite_tl.lower).
      if grad_through:
        return [self._record(layer, f"{layer.name}:input{i}",
                             *self.sizes[id(t)][:2], full, report_lib.SAVED,
                             "full input, the gradient depends on its values")
                for i, t in enumerate(inputs)]
      return []
    if kind == "multiply":
      needs = [self.needs_grad.get(id(t), False) for t in inputs]
      return [self._record(layer, f"{layer.name}:input{i}",
                           *self.sizes[id(t)][:2], full, report_lib.SAVED,
                           "operand, for the gradient of another operand")
              for i, t in enumerate(inputs)
              if any(n for j, n in enumerate(needs) if j != i)]
    if kind in ("add", "reshape"):
      return []
    if trains or grad_through:
      return [self._record(layer, f"{layer.name}:input{i}",
                           *self.sizes[id(t)][:2], full, report_lib.SAVED,
                           "unknown layer kind: its inputs are counted as "
                           "saved, conservatively")
              for i, t in enumerate(inputs)]
    return []

  def _is_output_softmax(self, node) -> bool:
    layer = node.layer
    softmax = isinstance(layer, keras.layers.Softmax) or (
        isinstance(layer, keras.layers.Activation)
        and keras.activations.serialize(layer.activation) == "softmax")
    output = tf.nest.flatten(node.outputs)[0]
    return softmax and any(output is t for t in self.model.outputs)

  def _fused_activation(self, node, trains, grad_through):
    """What a conv/dense's own ``activation=`` keeps for the backward pass."""
    layer = node.layer
    name = keras.activations.serialize(getattr(layer, "activation", None)
                                       or keras.activations.linear)
    if name == "linear" or not (trains or grad_through):
      return []
    output = tf.nest.flatten(node.outputs)[0]
    if name == "softmax" and any(output is t for t in self.model.outputs):
      return []  # Training uses the logits.
    shape, n = _elements(output, layer.name)
    if name in _MASK_ACTIVATIONS:
      return [self._record(layer, f"{layer.name}:activation", shape, n, 1,
                           report_lib.SAVED, f"1-bit mask of the fused {name}")]
    return [self._record(layer, f"{layer.name}:activation", shape, n,
                         self.activation_bits, report_lib.SAVED,
                         f"full tensor of the fused {name}, its gradient "
                         "depends on its values")]

  def working(self, node, kind, outputs):
    layer = node.layer
    records = []
    for i, t in enumerate(node.keras_inputs):
      shape, n, _ = self.sizes[id(t)]
      records.append(self._record(layer, f"{layer.name}:input{i}", shape, n,
                                  self.activation_bits, report_lib.WORKING,
                                  "input of the running layer"))
    if kind in ("norm", "norm_stats", "relu", "dropout", "hard_sigmoid",
                "activation", "add"):
      return records  # Computed in place over the input.
    groups = 1
    if kind == "depthwise":
      groups = node.keras_inputs[0].shape[-1]
    elif kind == "conv":
      groups = getattr(layer, "groups", 1)
    for i, t in enumerate(outputs):
      shape, n, _ = self.sizes[id(t)]
      why = "output of the running layer"
      if groups > 1:
        why += f" (1/{groups}: computed one group at a time)"
      records.append(self._record(layer, f"{layer.name}:output{i}", shape,
                                  n / groups, self.activation_bits,
                                  report_lib.WORKING, why))
    return records

  def run(self):
    breakdown = []
    saved_so_far = 0.0
    peak, peak_layer = 0.0, ""
    produced: List[int] = [id(t) for t in self.model.inputs]
    for index, node in enumerate(self.nodes):
      layer = node.layer
      kind = _kind(layer)
      outputs = tf.nest.flatten(node.outputs)
      for t in outputs:
        self.sizes[id(t)] = _elements(t, layer.name) + (layer.name,)
      trains = {graph.weight_short_name(w) for w in layer.trainable_weights}
      grad_through = any(self.needs_grad.get(id(t), False)
                         for t in node.keras_inputs)
      for t in outputs:
        self.needs_grad[id(t)] = grad_through or bool(trains)
      saved = self.saved(node, kind, trains, grad_through)
      working = self.working(node, kind, outputs)
      touched = {id(t) for t in node.keras_inputs} | {id(t) for t in outputs}
      live = []
      for tid in produced:
        if tid not in touched and self.last_use.get(tid, -1) > index:
          shape, n, owner = self.sizes[tid]
          live.append(report_lib.TensorRecord(
              layer=layer.name, tensor=f"{owner}:output", shape=shape,
              bits=self.activation_bits, bytes=n * self.act_bytes,
              role=report_lib.LIVE,
              why=f"output of '{owner}', read again by a later layer"))
      produced.extend(id(t) for t in outputs)
      working_bytes = sum(r.bytes for r in working)
      live_bytes = sum(r.bytes for r in live)
      held = working_bytes + saved_so_far + live_bytes
      if held > peak:
        peak, peak_layer = held, layer.name
      saved_bytes = sum(r.bytes for r in saved)
      breakdown.append(report_lib.LayerMemory(
          layer=layer.name, kind=kind, saved_bytes=saved_bytes,
          working_bytes=working_bytes, saved_before_bytes=saved_so_far,
          live_bytes=live_bytes, held_bytes=held,
          trainable_param_bytes=0.0, frozen_param_bytes=0.0,
          records=tuple(saved + working + live)))
      saved_so_far += saved_bytes
    return breakdown, peak, peak_layer, saved_so_far


def _param_records(model, trainable_bits, frozen_bits):
  records = []
  seen = set()
  trainable_ids = {id(w) for w in model.trainable_weights}
  for layer in model.layers:
    for w in layer.weights:
      if id(w) in seen:
        continue
      seen.add(id(w))
      trainable = id(w) in trainable_ids
      bits = trainable_bits if trainable else frozen_bits
      n = int(np.prod(w.shape, dtype=np.int64))
      records.append(report_lib.ParamRecord(
          layer=layer.name, weight=graph.weight_short_name(w),
          shape=tuple(int(d) for d in w.shape), trainable=trainable,
          bits=int(bits), bytes=n * bits / 8))
  return records


def training_memory(model: keras.Model, batch_size: int = 1,
                    activation_bits: int = 32, trainable_param_bits: int = 32,
                    frozen_param_bits: int = 8) -> report_lib.MemoryReport:
  """Models the memory of one training step of ``model`` (TinyTL accounting).

  What trains is read from ``model.trainable_weights`` (apply a method from
  :mod:`tflite_tl.rewrite` first).

  Args:
    model: a functional tf-keras model with a fixed input shape.
    batch_size: samples per training step.
    activation_bits: bit width of stored activations (32 = float32).
    trainable_param_bits: bit width of trainable weights.
    frozen_param_bits: bit width of frozen weights (8 = int8 quantised).

  Returns:
    A MemoryReport with per-layer and per-tensor records (figures are
    modelled (analytic), in bytes; ``total_mb`` in 10**6 bytes).
  """
  graph.check_functional(model, "training_memory")
  if not isinstance(batch_size, int) or batch_size < 1:
    raise ValueError(f"training_memory: batch_size must be a positive "
                     f"integer, got {batch_size!r}.")
  for name, bits in (("activation_bits", activation_bits),
                     ("trainable_param_bits", trainable_param_bits),
                     ("frozen_param_bits", frozen_param_bits)):
    if bits not in (1, 2, 4, 8, 16, 32):
      raise ValueError(f"training_memory: {name} must be one of 1, 2, 4, 8, "
                       f"16, 32, got {bits!r}.")
  breakdown, peak, peak_layer, saved_total = _Accountant(
      model, activation_bits).run()
  params = _param_records(model, trainable_param_bits, frozen_param_bits)
  per_layer: Dict[str, List[float]] = {}
  for p in params:
    entry = per_layer.setdefault(p.layer, [0.0, 0.0])
    entry[0 if p.trainable else 1] += p.bytes
  breakdown = tuple(
      report_lib.LayerMemory(**{
          **{f: getattr(l, f) for f in (
              "layer", "kind", "saved_bytes", "working_bytes",
              "saved_before_bytes", "live_bytes", "held_bytes", "records")},
          "trainable_param_bytes": per_layer.get(l.layer, [0.0, 0.0])[0],
          "frozen_param_bytes": per_layer.get(l.layer, [0.0, 0.0])[1]})
      for l in breakdown)
  return report_lib.MemoryReport(
      model=model.name, batch_size=batch_size,
      activation_bits=activation_bits,
      trainable_param_bits=trainable_param_bits,
      frozen_param_bits=frozen_param_bits,
      trainable_param_bytes=sum(p.bytes for p in params if p.trainable),
      frozen_param_bytes=sum(p.bytes for p in params if not p.trainable),
      peak_activation_bytes_per_sample=peak, peak_layer=peak_layer,
      saved_activation_bytes_per_sample=saved_total,
      breakdown=breakdown, params=tuple(params))
