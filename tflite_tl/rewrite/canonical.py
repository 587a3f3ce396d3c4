"""Canonical form: raw TensorFlow operators and conv classifiers as layers.

Models from ``keras.applications`` and hand-written functional models call
TensorFlow operators on Keras tensors (``x + 3.0``, ``x / 255.0``); tf-keras
records each call as an anonymous ``TFOpLambda`` layer, whose meaning is in
the call's arguments rather than in the layer. ``canonicalize(model)``
rewrites the forms that a CNN classifier commonly contains into layers the
rest of tflite-tl understands (block finding, memory accounting, lowering).
Nested models (a ``keras.applications`` backbone used as one layer of a
``Sequential`` or functional classifier) are first replaced by their layers
(:func:`inline_nested_models`).

==========================================  =================================
found                                       becomes
==========================================  =================================
``relu6(x + 3) * (1/6)`` (TFOpLambda add,   ``tflite_tl.layers.HardSigmoid``
ReLU(6.0), TFOpLambda multiply)
``Multiply([x, hard_sigmoid(x)])``          ``tflite_tl.layers.HardSwish``
``x + c``, ``x - c``, ``c - x``, ``x * c``,   ``Rescaling(scale, offset)``
``c * x``, ``x / c`` (c a number, or one
value per channel)
1x1 ``Conv2D`` on a 1x1 map read only by    ``Flatten`` -> ``Dense`` (same
``Flatten``/``Reshape`` (MobileNetV3's      name, kernel reshaped)
``Logits`` classifier)
==========================================  =================================

All replacements compute the same float32 function (``x / c`` becomes
``x * (1/c)``, which may differ by one rounding). The first two are exactly
how keras.applications MobileNetV3 writes hard-sigmoid and hard-swish.
"""
from typing import Callable, Dict, List, Optional

import numpy as np

from tflite_tl._compat import keras
from tflite_tl._compat import tf
from tflite_tl.layers.activations import HardSigmoid
from tflite_tl.layers.activations import HardSwish
from tflite_tl.rewrite import graph

_ADD = ("__operators__.add", "math.add")
_SUBTRACT = ("math.subtract", "__operators__.sub")
_MULTIPLY = ("math.multiply", "__operators__.mul")
_DIVIDE = ("math.truediv", "__operators__.truediv", "math.divide")


def _is_tf_op(layer) -> bool:
  return type(layer).__name__ == "TFOpLambda"


def _function(layer) -> Optional[str]:
  return layer.get_config().get("function") if _is_tf_op(layer) else None


def _is_keras_tensor(value) -> bool:
  # keras.backend.is_keras_tensor raises for plain numbers.
  return hasattr(value, "_keras_history")


def _tensor_and_constant(node):
  """(KerasTensor argument, constant array, tensor first?) of a binary op.

  None when the call does not have exactly one tensor and one constant.
  """
  args = list(node.call_args)
  if "y" in node.call_kwargs:
    args.append(node.call_kwargs["y"])
  if len(args) != 2:
    return None
  tensors = [_is_keras_tensor(a) for a in args]
  if tensors.count(True) != 1:
    return None
  index = tensors.index(True)
  try:
    constant = np.asarray(args[1 - index], np.float32)
  except (TypeError, ValueError):
    return None
  return args[index], constant, index == 0


def _affine_of(node):
  """(input tensor, scale, offset) when ``node`` is an affine scalar op."""
  function = _function(node.layer)
  if function is None:
    return None
  found = _tensor_and_constant(node)
  if found is None:
    return None
  x, c, tensor_first = found
  channels = x.shape[-1]
  if c.ndim > 1 or (c.ndim == 1 and c.shape[0] != channels):
    return None
  if function in _ADD:
    return x, np.float32(1.0), c
  if function in _SUBTRACT:
    return (x, np.float32(1.0), -c) if tensor_first else (
        x, np.float32(-1.0), c)
  if function in _MULTIPLY:
    return x, c, np.float32(0.0)
  if function in _DIVIDE and tensor_first and np.all(c != 0):
    return x, (np.float32(1.0) / c).astype(np.float32), np.float32(0.0)
  return None


def _is_relu6(layer) -> bool:
  return (isinstance(layer, keras.layers.ReLU) and layer.max_value is not None
          and float(layer.max_value) == 6.0
          and float(layer.negative_slope) == 0.0
          and float(layer.threshold) == 0.0)


class _Matcher:
  """Finds the patterns of the module docstring in one model."""

  def __init__(self, model):
    self.model = model
    self.readers = graph.consumers(model)
    self.nodes = graph.ordered_nodes(model)
    self.node_of = {id(graph.node_output(n)): n for n in self.nodes
                    if len(n.layer._inbound_nodes) == 1}  # pylint: disable=protected-access

  def single_reader(self, tensor):
    nodes = self.readers.get(id(tensor), [])
    return nodes[0] if len(nodes) == 1 else None

  def producer_node(self, tensor):
    return self.node_of.get(id(tensor))

  def hard_sigmoid(self, out_node):
    """[add node, relu node, mul node], input x: when ``out_node`` ends a
    hard-sigmoid whose inner tensors nothing else reads; else None."""
    if _function(out_node.layer) not in _MULTIPLY:
      return None
    found = _tensor_and_constant(out_node)
    if found is None or found[1].ndim or abs(float(found[1]) - 1 / 6) > 1e-7:
      return None
    relu = self.producer_node(found[0])
    if relu is None or not _is_relu6(relu.layer) or \
        self.single_reader(found[0]) is not out_node:
      return None
    add = self.producer_node(relu.keras_inputs[0])
    if add is None or _function(add.layer) not in _ADD or \
        self.single_reader(relu.keras_inputs[0]) is not relu:
      return None
    found = _tensor_and_constant(add)
    if found is None or found[1].ndim or float(found[1]) != 3.0:
      return None
    return [add, relu, out_node], found[0]

  def hard_swish(self, node):
    """Inner nodes and x when ``node`` is Multiply([x, hard_sigmoid(x)])."""
    if type(node.layer) is not keras.layers.Multiply:
      return None
    inputs = node.keras_inputs
    if len(inputs) != 2:
      return None
    for k in (0, 1):
      x, h = inputs[k], inputs[1 - k]
      producer = self.producer_node(h)
      if producer is None or self.single_reader(h) is not node:
        continue
      found = self.hard_sigmoid(producer)
      if found is not None and found[1] is x:
        return found[0], x
    return None

  def conv_classifier(self, node):
    """The Flatten/Reshape node after a 1x1 conv on a 1x1 map, else None."""
    layer = node.layer
    if type(layer) is not keras.layers.Conv2D:
      return None
    x = node.keras_inputs[0]
    if (tuple(layer.kernel_size) != (1, 1) or tuple(layer.strides) != (1, 1)
        or layer.groups != 1 or tuple(x.shape[1:3]) != (1, 1)
        or layer.data_format != "channels_last"
        or len(layer._inbound_nodes) != 1):  # pylint: disable=protected-access
      return None
    reader = self.single_reader(graph.node_output(node))
    if reader is None:
      return None
    if isinstance(reader.layer, keras.layers.Flatten) or (
        isinstance(reader.layer, keras.layers.Reshape)
        and len(graph.node_output(reader).shape) == 2):
      return reader
    return None


def _unique_name(wanted: str, taken) -> str:
  name, k = wanted, 1
  while name in taken:
    name, k = f"{wanted}_{k}", k + 1
  taken.add(name)
  return name


def _replay(inner, inputs, taken):
  """Calls copies of ``inner``'s layers (with its weights) on ``inputs``."""
  tensors = {id(t): x for t, x in zip(inner.inputs, inputs)}
  copies = {}

  def mapped(value):
    return tensors.get(id(value), value) if _is_keras_tensor(value) else value

  for node in graph.ordered_nodes(inner):
    layer = node.layer
    fresh = id(layer) not in copies
    if fresh:
      copies[id(layer)] = graph.copy_layer(
          layer, name=_unique_name(layer.name, taken))
    args = tf.nest.map_structure(mapped, node.call_args)
    kwargs = tf.nest.map_structure(mapped, node.call_kwargs)
    kwargs.pop("training", None)
    outputs = copies[id(layer)](*args, **kwargs)
    if fresh:
      graph.assign_named_weights(copies[id(layer)], graph.named_weights(layer))
    for old, new in zip(tf.nest.flatten(node.outputs),
                        tf.nest.flatten(outputs)):
      tensors[id(old)] = new
  outputs = [tensors[id(t)] for t in inner.outputs]
  return outputs[0] if len(outputs) == 1 else outputs


def inline_nested_models(model: keras.Model) -> keras.Model:
  """``model`` with every nested functional/Sequential model replaced by its
  layers (e.g. ``Sequential([base, GlobalAveragePooling2D(), Dense(k)])``,
  the usual Keras transfer-learning form); ``model`` itself if none.

  Layer names stay unless they collide, then they get a ``_1`` suffix.
  """
  if not getattr(model, "_is_graph_network", False) or not any(
      isinstance(l, keras.Model) for l in model.layers):
    return model
  taken = {l.name for l in model.layers if not isinstance(l, keras.Model)}

  def clone_layer(layer):
    return None if isinstance(layer, keras.Model) else graph.copy_layer(layer)

  def node_hook(node, ctx):
    inner = node.layer
    if not isinstance(inner, keras.Model):
      return None
    if not getattr(inner, "_is_graph_network", False):
      raise graph.UnsupportedModelError(
          f"layer '{inner.name}' is a nested subclassed model "
          f"({type(inner).__name__}); its graph cannot be inspected. Build "
          "it with keras.Input and layer calls.")
    inner = inline_nested_models(inner)
    return _replay(inner, [ctx.new_tensor(t) for t in node.keras_inputs],
                   taken)

  return graph.rebuild(model, clone_layer=clone_layer, node_hook=node_hook)


def canonicalize(model: keras.Model) -> keras.Model:
  """``model`` with nested models inlined and the patterns of the module
  docstring replaced by layers.

  Returns ``model`` itself when there is nothing to replace, otherwise a new
  model (the input is never modified).
  """
  if getattr(model, "_is_graph_network", False):
    model = inline_nested_models(model)
  graph.check_functional(model, "canonicalize")
  matcher = _Matcher(model)
  taken = {l.name for l in model.layers}
  new_layer: Dict[int, keras.layers.Layer] = {}  # id(old layer) -> layer
  compute: Dict[int, Callable] = {}  # id(old node) -> fn(ctx) -> tensor
  skipped = set()  # ids of nodes folded into a replacement
  weights: Dict[int, Callable] = {}  # id(old layer) -> fn() -> weights

  def replace(node, layer, source, inner: List = ()):
    new_layer[id(node.layer)] = layer
    compute[id(node)] = lambda ctx, l=layer, s=source: l(ctx.new_tensor(s))
    skipped.update(id(n) for n in inner)

  for node in matcher.nodes:
    if id(node) in skipped or id(node) in compute:
      continue
    found = matcher.hard_swish(node)
    if found is not None:
      inner, x = found
      name = _unique_name(f"{graph.producer(x).name}_hard_swish", taken)
      replace(node, HardSwish(name=name), x, inner)
      continue
    found = matcher.conv_classifier(node)
    if found is not None:
      conv, reader = node.layer, found
      dense = keras.layers.Dense(
          conv.filters, activation=conv.activation, use_bias=conv.use_bias,
          name=conv.name)
      flatten = keras.layers.Flatten(
          name=_unique_name(f"{conv.name}_flatten", taken))
      new_layer[id(conv)] = dense
      x = node.keras_inputs[0]
      compute[id(reader)] = (
          lambda ctx, d=dense, f=flatten, x=x: d(f(ctx.new_tensor(x))))
      skipped.add(id(node))

      def conv_weights(conv=conv):
        values = graph.named_weights(conv)
        values["kernel"] = values["kernel"].reshape(values["kernel"].shape[2:])
        return values

      weights[id(conv)] = conv_weights
      continue
  # Hard-sigmoids left over are standalone (squeeze-and-excitation gates);
  # scalar operators last, so the patterns above see their raw form.
  for node in matcher.nodes:
    if id(node) in skipped or id(node) in compute:
      continue
    found = matcher.hard_sigmoid(node)
    if found is not None:
      inner, x = found
      name = _unique_name(f"{graph.producer(x).name}_hard_sigmoid", taken)
      replace(node, HardSigmoid(name=name), x, inner[:-1])
  for node in matcher.nodes:
    if id(node) in skipped or id(node) in compute:
      continue
    found = _affine_of(node)
    if found is not None:
      x, scale, offset = found
      name = _unique_name(node.layer.name.replace("tf.", "").replace(
          "__operators__.", "") + "_rescaling", taken)
      replace(node, keras.layers.Rescaling(
          _config_value(scale), _config_value(offset), name=name), x)
  if not compute:
    return model

  def clone_layer(layer):
    if id(layer) in new_layer:
      return new_layer[id(layer)]
    return graph.copy_layer(layer)

  def node_hook(node, ctx):
    if id(node) in compute:
      return compute[id(node)](ctx)
    if id(node) in skipped:
      # Inner node of a replaced pattern: nothing outside it reads its output.
      return ctx.new_tensor(node.keras_inputs[0])
    return None

  def weight_source(old, new):
    del new
    if id(old) in weights:
      return weights[id(old)]()
    return graph.named_weights(old)

  return graph.rebuild(model, clone_layer=clone_layer, node_hook=node_hook,
                       weight_source=weight_source)


def _config_value(value):
  """A float or a list of floats (Rescaling's config must serialise)."""
  value = np.asarray(value, np.float32)
  return float(value) if value.ndim == 0 else [float(v) for v in value]
