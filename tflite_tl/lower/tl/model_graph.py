"""A Keras model as the kernel flavor's graph of layer calls.

Nodes are Keras' own topological order (the order its functional ``call``
uses). For each tensor the graph records its consumers and whether a gradient
must reach it (a trained weight lies upstream), so the backward pass stops at
the earliest trained layer. ReLU / ReLU6 layers whose input is a conv, dense
or add output used by nothing else are fused into that producer (TFLite's
fused activations); the producer then also emits the 1-bit mask the backward
pass needs.
"""
import dataclasses
from typing import Dict, FrozenSet, List, Optional, Tuple

from tflite_tl._compat import keras
from tflite_tl._compat import tf
from tflite_tl.layers import partial
from tflite_tl.lower.graph import weight_full_name
from tflite_tl.lower.graph import weight_short_name
from tflite_tl.lower.layers import UnsupportedLayerError

# Layers that can take a fused ReLU/ReLU6 (exact classes: subclasses that
# change ``call`` are not assumed to behave like their parent).
_FUSABLE = (keras.layers.Conv2D, partial.Conv2D, keras.layers.DepthwiseConv2D,
            partial.DepthwiseConv2D, keras.layers.Dense, partial.Dense,
            keras.layers.Add)


@dataclasses.dataclass
class Node:
  """One call of a layer."""
  index: int
  layer: keras.layers.Layer
  input_ids: List[int]
  output_id: int
  in_shapes: List[Tuple[int, ...]]
  out_shape: Tuple[int, ...]
  weights: Dict[str, tf.Variable]
  trained: FrozenSet[str]
  # The ReLU kind ("relu"/"relu6") this node applies as a fused activation:
  # its own ``activation=`` or a following ReLU layer fused into it.
  activation: Optional[str] = None
  # For a ReLU layer fused into its producer: the producer's index; for the
  # producer: the fused layer's output (what the emitted output holds).
  fused_into: Optional[int] = None
  activation_output_id: Optional[int] = None
  is_model_output: bool = False

  @property
  def name(self) -> str:
    return self.layer.name

  def weight_name(self, short: str) -> str:
    return weight_full_name(self.weights[short])

  def is_trained(self, short: str) -> bool:
    return short in self.trained

  @property
  def has_trained(self) -> bool:
    return bool(self.trained)


class ModelGraph:
  """The layer calls of a functional model with gradient-flow facts."""

  def __init__(self, model: keras.Model, batch_size: int):
    _check_functional(model)
    self.model = model
    self.batch_size = batch_size
    trained_refs = {w.ref() for w in model.trainable_weights}
    self.input_id = id(model.inputs[0])
    self.output_id = id(model.outputs[0])
    self.input_shape = self._with_batch(model.inputs[0].shape)
    self.nodes: List[Node] = []
    for node in _topological_nodes(model):
      outs = tf.nest.flatten(node.outputs)
      if len(outs) != 1:
        raise UnsupportedLayerError(
            f"Layer '{node.layer.name}' has {len(outs)} outputs; the kernel "
            "flavor supports single-output layers.")
      layer = node.layer
      weights = {weight_short_name(w): w for w in layer.weights}
      trained = frozenset(n for n, w in weights.items()
                          if w.ref() in trained_refs)
      self.nodes.append(Node(
          index=len(self.nodes), layer=layer,
          input_ids=[id(t) for t in node.keras_inputs],
          output_id=id(outs[0]),
          in_shapes=[self._with_batch(t.shape) for t in node.keras_inputs],
          out_shape=self._with_batch(outs[0].shape), weights=weights,
          trained=trained, activation=_own_activation(layer),
          is_model_output=id(outs[0]) == self.output_id))
    self.consumers: Dict[int, List[int]] = {}
    for n in self.nodes:
      for t in n.input_ids:
        self.consumers.setdefault(t, []).append(n.index)
    self.needs_grad: Dict[int, bool] = {self.input_id: False}
    for n in self.nodes:
      self.needs_grad[n.output_id] = (
          n.has_trained or any(self.needs_grad[t] for t in n.input_ids))
    self._fuse_activations()

  def check_trainable(self) -> None:
    if not self.needs_grad.get(self.output_id):
      raise UnsupportedLayerError(
          f"Model '{self.model.name}': no trained weight influences the "
          "output.")

  def _with_batch(self, shape) -> Tuple[int, ...]:
    dims = list(shape)
    if any(d is None for d in dims[1:]):
      raise UnsupportedLayerError(
          f"Model '{self.model.name}' has a dynamic non-batch dimension "
          f"{tuple(shape)}; build it with a fixed input resolution.")
    return tuple([self.batch_size] + [int(d) for d in dims[1:]])

  def _fuse_activations(self):
    producer = {n.output_id: n for n in self.nodes}
    for n in self.nodes:
      kind = relu_kind(n.layer)
      if kind is None or n.is_model_output or len(n.input_ids) != 1:
        continue
      p = producer.get(n.input_ids[0])
      if (p is None or type(p.layer) not in _FUSABLE or p.activation
          or _has_own_nonlinear_activation(p.layer)
          or len(self.consumers.get(p.output_id, [])) != 1):
        continue
      p.activation = kind
      p.activation_output_id = n.output_id
      n.fused_into = p.index

  def input_grad_needed(self, node: Node, i: int) -> bool:
    return self.needs_grad[node.input_ids[i]]

  def output_grad_flows(self, node: Node) -> bool:
    """Whether the backward pass reaches this node's output."""
    return self.needs_grad[node.output_id]


def relu_kind(layer) -> Optional[str]:
  """"relu" / "relu6" for a ReLU-like layer that the TL kernels handle."""
  if type(layer) is keras.layers.ReLU:  # pylint: disable=unidiomatic-typecheck
    if float(layer.negative_slope) or float(layer.threshold):
      return None
    if layer.max_value is None:
      return "relu"
    return "relu6" if float(layer.max_value) == 6.0 else None
  if type(layer) is keras.layers.Activation:  # pylint: disable=unidiomatic-typecheck
    name = getattr(layer.activation, "__name__", str(layer.activation))
    return name if name in ("relu", "relu6") else None
  return None


def _activation_name(layer) -> Optional[str]:
  act = getattr(layer, "activation", None)
  if act is None:
    return None
  return getattr(act, "__name__", str(act))


def _own_activation(layer) -> Optional[str]:
  name = _activation_name(layer)
  return name if name in ("relu", "relu6") else None


def _has_own_nonlinear_activation(layer) -> bool:
  return _activation_name(layer) not in (None, "linear")


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
