"""Walks a functional Keras model and builds its builtin-only forward program.

The program runs the layers in Keras' own topological order (``model.
_nodes_by_depth``, as Keras' functional ``call`` does), each through its
lowering rule (:mod:`tflite_tl.lower.layers`). At build time it decides which
tensors need a gradient: a tensor does iff a trained weight lies upstream of
it, so the backward pass stops at the earliest layer with a trained weight.
Tensors used by several layers that need a gradient go through a fan-out
primitive so their gradients are summed with ADD (TFLM has no ADD_N).

``probed`` layers (the Fisher graph, :mod:`tflite_tl.lower.fisher_graph`)
count as trained for that decision, so the backward pass reaches their
input or output although no weight of theirs is trained; ``probe`` at call
time sees (and may replace) that tensor.
"""
import dataclasses
from typing import Callable, Dict, List, Mapping, Optional

from tflite_tl._compat import keras
from tflite_tl._compat import tf
from tflite_tl.lower.layers import LayerSite
from tflite_tl.lower.layers import UnsupportedLayerError
from tflite_tl.lower.layers import rule_for
from tflite_tl.lower.ops.shape import make_fanout


def weight_short_name(weight) -> str:
  """'block1/conv/kernel:0' -> 'kernel'."""
  return weight.name.split("/")[-1].split(":")[0]


def weight_full_name(weight) -> str:
  """'block1/conv/kernel:0' -> 'block1/conv/kernel' (the variable's name)."""
  return weight.name.split(":")[0]


@dataclasses.dataclass
class _Step:
  layer_name: str
  fn: Callable
  input_ids: List[str]
  output_ids: List[str]
  probed: Optional[str] = None  # "input" / "output": handed to ``probe``


class ForwardProgram:
  """The model's forward pass as builtin-only primitives for one batch size.

  Call it with the image tensor to get the logits. ``weight_source(weight)``
  supplies each Keras weight's tensor when the program runs (a variable read
  for trained weights, a constant otherwise).
  """

  def __init__(self, model: keras.Model, batch_size: int,
               trained_refs, weight_source: Callable, with_gradients: bool,
               probed: Optional[Mapping[str, str]] = None,
               channel_index: Optional[Mapping[str, Callable]] = None):
    """``probed``: {layer name: "input" or "output"}, the layers whose
    input (first) or output tensor ``__call__``'s ``probe`` receives; the
    gradient must reach it (``with_gradients``). ``channel_index``: {layer
    name: () -> (channels, channel_slots)} for channel-sparse layers whose
    choice is read from variables (``LayerSite.channel_index``)."""
    channel_index = dict(channel_index or {})
    _check_functional(model)
    probed = dict(probed or {})
    unknown = sorted(set(probed) - {l.name for l in model.layers})
    if unknown:
      raise ValueError(f"Model '{model.name}' has no layers {unknown}.")
    self._probed = probed
    self.model = model
    self.batch_size = batch_size
    self._steps: List[_Step] = []
    self._fanout: Dict[str, Callable] = {}
    self.output_is_softmax = False
    self._input_id = str(id(model.inputs[0]))
    self._output_id = str(id(model.outputs[0]))
    need: Dict[str, bool] = {self._input_id: False}
    consumers: Dict[str, int] = {self._output_id: 1}
    nodes = _topological_nodes(model)
    for node in nodes:
      for t in node.keras_inputs:
        consumers[str(id(t))] = consumers.get(str(id(t)), 0) + 1

    for node in nodes:
      layer = node.layer
      in_ids = [str(id(t)) for t in node.keras_inputs]
      outs = tf.nest.flatten(node.outputs)
      out_ids = [str(id(t)) for t in outs]
      weights = {weight_short_name(w): w for w in layer.weights}
      has_trained = (any(w.ref() in trained_refs for w in layer.weights)
                     or layer.name in probed)
      need_in = [need[i] and with_gradients for i in in_ids]
      if probed.get(layer.name) == "input" and with_gradients:
        need_in[0] = True
      site = LayerSite(
          layer=layer,
          in_shapes=[self._with_batch(t.shape) for t in node.keras_inputs],
          out_shapes=[self._with_batch(t.shape) for t in outs],
          need_input_grads=need_in,
          weight=_weight_getter(layer, weights, weight_source),
          trained=_trained_getter(layer, weights, trained_refs),
          has_weight=lambda n, ws=weights: n in ws,
          is_model_output=self._output_id in out_ids,
          channel_index=channel_index.get(layer.name))
      fn = rule_for(layer)(site)
      self._steps.append(_Step(layer.name, fn, in_ids, out_ids,
                               probed.get(layer.name)))
      for o in out_ids:
        need[o] = any(need[i] for i in in_ids) or has_trained
        if need[o] and with_gradients and consumers.get(o, 0) > 1:
          self._fanout[o] = make_fanout(num_outputs=consumers[o],
                                        need_input_grad=True)
      if site.is_model_output and _ends_in_softmax(layer):
        self.output_is_softmax = True
    self.trained_weights_reached = need.get(self._output_id, False)

  def _with_batch(self, shape) -> List[int]:
    dims = list(shape)
    if any(d is None for d in dims[1:]):
      raise UnsupportedLayerError(
          f"Model '{self.model.name}' has a dynamic non-batch dimension "
          f"{tuple(shape)}; build it with a fixed input resolution.")
    return [self.batch_size] + [int(d) for d in dims[1:]]

  def __call__(self, images, probe: Optional[Callable] = None):
    """The logits of ``images``. ``probe(layer name, tensor) -> tensor`` is
    called on each probed layer's input (before the layer reads it: a
    private copy, so its gradient is this layer's only) or output."""
    pending: Dict[str, List[tf.Tensor]] = {}

    def put(tid, tensor):
      if tid in self._fanout:
        pending[tid] = list(self._fanout[tid](tensor))
      else:
        pending[tid] = [tensor]

    def take(tid):
      copies = pending[tid]
      return copies.pop(0) if len(copies) > 1 else copies[0]

    put(self._input_id, images)
    for step in self._steps:
      inputs = [take(i) for i in step.input_ids]
      if step.probed == "input" and probe is not None:
        inputs[0] = probe(step.layer_name, tf.identity(inputs[0]))
      # Ordering only: a layer's variables are read once its inputs exist, so
      # the converter does not hoist every READ_VARIABLE to the start of the
      # step (which keeps e.g. the classifier kernel alive through the
      # whole forward pass).
      with tf.control_dependencies(inputs):
        y = step.fn(inputs)
      if len(step.output_ids) != 1:
        raise UnsupportedLayerError(
            f"Layer '{step.layer_name}' has several outputs; not supported.")
      if step.probed == "output" and probe is not None:
        y = probe(step.layer_name, y)
      put(step.output_ids[0], y)
    return take(self._output_id)


def _check_functional(model):
  if not isinstance(model, keras.Model) or not hasattr(model, "_nodes_by_depth"):
    raise UnsupportedLayerError(
        f"{type(model).__name__} is not a functional Keras model; lowering "
        "needs keras.Model(inputs, outputs) or keras.Sequential with an Input.")
  if len(model.inputs) != 1 or len(model.outputs) != 1:
    raise UnsupportedLayerError(
        f"Model '{model.name}' has {len(model.inputs)} inputs and "
        f"{len(model.outputs)} outputs; lowering needs one image input and "
        "one logits output.")
  if len(model.inputs[0].shape) != 4:
    raise UnsupportedLayerError(
        f"Model '{model.name}' input has shape {model.inputs[0].shape}; "
        "lowering needs NHWC images.")


def _topological_nodes(model):
  nodes = []
  for depth in sorted(model._nodes_by_depth.keys(), reverse=True):  # pylint: disable=protected-access
    for node in model._nodes_by_depth[depth]:  # pylint: disable=protected-access
      if not node.is_input:
        nodes.append(node)
  return nodes


def _ends_in_softmax(layer) -> bool:
  if isinstance(layer, keras.layers.Softmax):
    return True
  act = getattr(layer, "activation", None)
  return getattr(act, "__name__", None) == "softmax"


def _weight_getter(layer, weights, weight_source):
  def get(name):
    if name not in weights:
      raise UnsupportedLayerError(
          f"Layer '{layer.name}' has no weight '{name}' "
          f"(has {sorted(weights)}).")
    return weight_source(weights[name])
  return get


def _trained_getter(layer, weights, trained_refs):
  del layer
  def trained(name):
    w = weights.get(name)
    return w is not None and w.ref() in trained_refs
  return trained
