"""TinyTrain's selection pass as a TFLM graph (``fisher.tflite``).

One invoke runs the forward and backward pass of a batch of support samples
and returns, per candidate layer, the per-channel sums

    S_c = sum_n ( sum_{h,w} a[n,h,w,c] * g[n,h,w,c] ) ** 2

of :mod:`tflite_tl.sparse.fisher` (``a`` the layer's input, or output for an
output-axis choice; ``g`` the gradient of the sample's own loss reaching it
through this layer). A board accumulates S over its support batches and
divides by 2N to get the Fisher potentials Delta_c, then ranks channels and
layers as the host does (:mod:`tflite_tl.sparse.select`), without a host.

The graph is builtin-only (the builtin flavor's backward primitives through
the TF converter), so it runs in any TFLM. Every weight is a constant: the
pass scores the model as exported (the backbone is frozen; the head and the
trained parameters are the export's). With ``precision="int8"`` frozen
kernels are stored int8 and rebuilt by DEQUANTIZE + MUL, as in the builtin
int8 train step, so the graph takes the int8 step's flash, not float32's.
"""
import contextlib
import dataclasses
import re
from typing import Dict, Mapping, Tuple

import numpy as np

from tflite_tl._compat import keras
from tflite_tl._compat import tf
from tflite_tl.flatbuffer import edit
from tflite_tl.flatbuffer import reader
from tflite_tl.lower.builtins import check_builtin_only
from tflite_tl.lower.convert import convert_function
from tflite_tl.lower.fake_quant import fake_quantized_kernels
from tflite_tl.lower.graph import ForwardProgram
from tflite_tl.lower.int8_constants import store_int8
from tflite_tl.lower.ops.loss import make_softmax_cross_entropy

# The sparse update's channel axes (tflite_tl.sparse.fisher) and the tensor
# whose channels they score: a depthwise conv's channels are its input's.
_PROBE_OF_AXIS = {"input": "input", "channels": "input", "output": "output"}


@dataclasses.dataclass(frozen=True)
class FisherGraph:
  """``fisher.tflite`` and how to read it.

  Attributes:
    tflite: the flatbuffer. Inputs ``images`` [B,H,W,C] float32 and
      ``labels`` [B] int32; one output [channels] float32 per layer.
    batch_size: B, the support samples per invoke.
    layers: candidate layer names, in output order.
    axes: {layer: channel axis} the sums are taken on.
  """
  tflite: bytes
  batch_size: int
  layers: Tuple[str, ...]
  axes: Dict[str, str]

  def inputs(self, images: np.ndarray, labels: np.ndarray) -> list:
    """``images`` and ``labels`` of one batch in the graph's input order."""
    by_kind = {"images": np.asarray(images, np.float32),
               "labels": np.asarray(labels, np.int32)}
    names = [i.name for i in reader.inputs(self.tflite)]
    return [by_kind["labels" if "labels" in n else "images"] for n in names]

  def potentials(self, sums: Mapping[str, np.ndarray],
                 num_samples: int) -> Dict[str, np.ndarray]:
    """Delta_c = S_c / (2N) from the sums accumulated over N samples."""
    if num_samples < 1:
      raise ValueError(f"num_samples must be >= 1, got {num_samples}.")
    return {n: np.asarray(sums[n], np.float64) / (2.0 * num_samples)
            for n in self.layers}


def _output_key(index: int, layer: str) -> str:
  # The converter names outputs after the signature's keys; a prefix with
  # the position keeps them ordered and unique whatever the layer names.
  return f"s{index:03d}_" + re.sub(r"[^0-9A-Za-z_]", "_", layer)


class FisherModule(tf.Module):
  """The selection pass as a ``tf.function`` (the TF reference of the graph).

  ``sums(images, labels)`` -> {output key: [channels] float32}.
  """

  def __init__(self, model: keras.Model, axes: Mapping[str, str],
               batch_size: int):
    super().__init__(name="tflite_tl_fisher")
    if batch_size < 1:
      raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    bad = {n: a for n, a in axes.items() if a not in _PROBE_OF_AXIS}
    if bad:
      raise ValueError("Fisher graph: axes must be 'input', 'output' or "
                       f"'channels', got {bad}.")
    if not axes:
      raise ValueError("Fisher graph: give at least one candidate layer.")
    order = {l.name: i for i, l in enumerate(model.layers)}
    unknown = sorted(set(axes) - set(order))
    if unknown:
      raise ValueError(f"Fisher graph: model '{model.name}' has no layers "
                       f"{unknown}.")
    self.layers = tuple(sorted(axes, key=order.__getitem__))
    self.axes = dict(axes)
    self.keys = {n: _output_key(i, n) for i, n in enumerate(self.layers)}
    self.channels: Dict[str, int] = {}  # filled when the function traces
    values = {w.ref(): w.numpy() for w in model.weights}
    self._program = ForwardProgram(
        model, batch_size, trained_refs=set(),
        weight_source=lambda w: tf.constant(values[w.ref()]),
        with_gradients=True,
        probed={n: _PROBE_OF_AXIS[a] for n, a in axes.items()})
    image_shape = [int(d) for d in model.inputs[0].shape[1:]]
    # batch_size=1 makes the loss the *sum* over samples, so that each
    # sample's gradient is its own loss's (the potentials square per-sample
    # sums).
    self._loss = make_softmax_cross_entropy(
        num_classes=int(model.outputs[0].shape[-1]), batch_size=1)
    self.sums = tf.function(self._sums, input_signature=[
        tf.TensorSpec([batch_size] + image_shape, tf.float32, "images"),
        tf.TensorSpec([batch_size], tf.int32, "labels")])

  def _sums(self, images, labels):
    probes = {}

    def probe(layer_name, tensor):
      probes[layer_name] = tensor
      return tensor

    with tf.GradientTape() as tape:
      def watched(layer_name, tensor):
        tape.watch(tensor)
        return probe(layer_name, tensor)
      logits = self._program(images, probe=watched)
      loss = self._loss(logits, labels)
    grads = tape.gradient(loss, [probes[n] for n in self.layers])
    out = {}
    for name, grad in zip(self.layers, grads):
      activation = probes[name]
      if grad is None:
        out[self.keys[name]] = tf.zeros([activation.shape[-1]], tf.float32)
        continue
      per_sample = tf.reduce_sum(activation * grad, axis=[1, 2])
      out[self.keys[name]] = tf.reduce_sum(tf.square(per_sample), axis=0)
      self.channels[name] = int(activation.shape[-1])
    return out


def lower_fisher(model: keras.Model, axes: Mapping[str, str], *,
                 batch_size: int, precision: str = "float") -> FisherGraph:
  """Lowers the selection pass over ``axes`` ({layer: channel axis}) of
  ``model`` (prepared: BatchNorm folded, the new head) to ``fisher.tflite``.

  Raises:
    NonBuiltinOpError: a layer's backward pass has no builtin lowering.
    UnsupportedLayerError: a layer cannot be lowered.
    ValueError: bad axes, batch size or precision.
  """
  if precision not in ("float", "int8"):
    raise ValueError(f"precision must be 'float' or 'int8', got "
                     f"{precision!r}.")
  if precision == "int8":
    with fake_quantized_kernels(model) as frozen:
      module = FisherModule(model, axes, batch_size)
      tflite = convert_function(module, module.sums)
    tflite, _ = store_int8(tflite, frozen, None)
  else:
    module = FisherModule(model, axes, batch_size)
    tflite = convert_function(module, module.sums)
  check_builtin_only(tflite, "Fisher graph")
  order = _output_layers(tflite, module)
  return FisherGraph(tflite, batch_size, tuple(order), dict(axes))


def _output_layers(tflite: bytes, module: FisherModule) -> Tuple[str, ...]:
  """The layer of each subgraph output, in output order (the converter's
  order is its own; its signature names each output by our key)."""
  model = edit.unpack(tflite)
  by_key = {k: n for n, k in module.keys.items()}
  tensor_layer = {}
  for signature in model.signatureDefs or []:
    for out in signature.outputs:
      key = out.name.decode() if isinstance(out.name, bytes) else out.name
      if key in by_key:
        tensor_layer[int(out.tensorIndex)] = by_key[key]
  order = tuple(tensor_layer.get(int(t)) for t in model.subgraphs[0].outputs)
  if None in order or sorted(order) != sorted(module.layers):
    raise ValueError(f"Fisher graph: its outputs do not name the layers "
                     f"{list(module.layers)} (signature {tensor_layer}).")
  shapes = [tuple(o.shape) for o in reader.outputs(tflite)]
  if shapes != [(module.channels[n],) for n in order]:
    raise ValueError(f"Fisher graph: outputs {shapes} are not the layers' "
                     "channel counts.")
  return order


def reference_weights(model: keras.Model, precision: str):
  """A context in which ``model`` holds the weights ``lower_fisher`` with
  ``precision`` computes with (int8: the frozen kernels' int8 values)."""
  if precision == "int8":
    return fake_quantized_kernels(model)
  return contextlib.nullcontext()


def run_reference(model: keras.Model, axes: Mapping[str, str], images,
                  labels, batch_size: int) -> Dict[str, np.ndarray]:
  """Per-layer sums S_c of ``images`` (a multiple of ``batch_size``) by the
  TF reference of the graph, in float64 accumulation over batches."""
  module = FisherModule(model, axes, batch_size)
  images = np.asarray(images, np.float32)
  labels = np.asarray(labels, np.int32)
  if len(images) % batch_size:
    raise ValueError(f"{len(images)} samples are not a multiple of the "
                     f"batch size {batch_size}.")
  totals = {n: 0.0 for n in module.layers}
  for start in range(0, len(images), batch_size):
    out = module.sums(images[start:start + batch_size],
                      labels[start:start + batch_size])
    for n in module.layers:
      totals[n] = totals[n] + out[module.keys[n]].numpy().astype(np.float64)
  return totals
