"""What a kernel-flavor layer rule receives and returns, and the rule table.

A rule emits one layer call's forward ops and returns its output tensor with
a ``backward(grad) -> [grad per input]`` closure (None where the backward
pass does not go). Closures run in reverse layer order after the loss, so
each layer's backward ops are emitted where its gradient becomes available;
a rule computes input gradients before updating its own parameters (every
gradient of a step uses the step's starting parameters, as in SGD).
"""
import dataclasses
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from tflite_tl.kernels import tflm_ops
from tflite_tl.lower.layers import UnsupportedLayerError
from tflite_tl.lower.tl.emitter import Emitter
from tflite_tl.lower.tl.emitter import Grad
from tflite_tl.lower.tl.flatbuffer_writer import Quantization
from tflite_tl.lower.tl.flatbuffer_writer import Tensor
from tflite_tl.lower.tl.model_graph import ModelGraph
from tflite_tl.lower.tl.model_graph import Node

PRECISIONS = ("float", "int8")

Backward = Callable[[Grad], List[Optional[Grad]]]


@dataclasses.dataclass(frozen=True)
class Policy:
  """Numeric choices of a lowering.

  ``precision`` "int8": layers whose trained parameters are at most a bias
  compute in int8 (TFLM's int8 kernels, per-channel int8 weights in flash);
  layers with trained weights, and layers without an int8 rule, compute in
  float (their inputs are dequantized; their outputs re-quantized for int8
  consumers). ``quantization`` maps Keras tensor ids to calibrated int8
  parameters. ``qas``: quantization-aware scaling of the updates (see the
  TL_CONV_UPDATE kernel); False trains the integer copies with plain SGD.
  """
  precision: str = "float"
  quantization: Optional[Dict[int, Quantization]] = None
  qas: bool = True
  learning_rate: float = 0.0
  # training: emit the backward pass and the updates (the train step);
  # otherwise only the forward pass (the predict graph).
  training: bool = True
  # Trained parameters as variable tensors (shared by name between the train
  # and predict graphs on a board) or as constants (a standalone model).
  params_as_variables: bool = True

  def __post_init__(self):
    if self.precision not in PRECISIONS:
      raise ValueError(f"precision must be one of {PRECISIONS}, got "
                       f"{self.precision!r}.")
    if self.precision == "int8" and self.quantization is None:
      raise ValueError("int8 lowering needs calibrated quantization "
                       "parameters (calibration images).")

  @property
  def int8(self) -> bool:
    return self.precision == "int8"


@dataclasses.dataclass
class Call:
  """One layer call being emitted."""
  node: Node
  graph: ModelGraph
  inputs: List[Tensor]
  em: Emitter
  policy: Policy

  @property
  def layer(self):
    return self.node.layer

  @property
  def name(self) -> str:
    return self.node.name

  def need_input_grad(self, i: int = 0) -> bool:
    return self.policy.training and self.graph.input_grad_needed(self.node, i)

  @property
  def backward_reaches(self) -> bool:
    """The backward pass reaches this call (its output has a gradient)."""
    return self.policy.training and self.graph.output_grad_flows(self.node)

  def trained(self, weight: str) -> bool:
    """Whether ``weight`` is a variable tensor of this graph."""
    return self.policy.params_as_variables and self.node.is_trained(weight)

  def int8(self, *frozen_weights: str) -> bool:
    """Whether this call computes in int8: an int8 lowering and none of the
    named weights trains (the same decision in train and predict graphs)."""
    return self.policy.int8 and not any(
        self.node.is_trained(w) for w in frozen_weights)

  def weight(self, short: str) -> np.ndarray:
    return np.asarray(self.node.weights[short].numpy(), np.float32)

  def has_weight(self, short: str) -> bool:
    return short in self.node.weights

  def param_name(self, short: str) -> str:
    return self.node.weight_name(short)

  def out_quantization(self) -> Quantization:
    """Calibrated int8 parameters of what the emitted output holds."""
    tensor_id = self.node.activation_output_id or self.node.output_id
    return self.policy.quantization[tensor_id]

  def in_quantization(self, i: int = 0) -> Quantization:
    t = self.inputs[i]
    if t.quantization is not None and t.dtype == np.int8:
      return t.quantization
    return self.policy.quantization[self.node.input_ids[i]]

  def unsupported(self, what: str) -> UnsupportedLayerError:
    return UnsupportedLayerError(
        f"Layer '{self.name}' ({type(self.layer).__name__}): {what}")


@dataclasses.dataclass
class Emitted:
  output: Tensor
  backward: Optional[Backward] = None


Rule = Callable[[Call], Emitted]
_RULES: Dict[type, Tuple[Rule, Tuple[str, ...]]] = {}


def register(layer_classes: Sequence[type], rule: Rule,
             requires: Sequence[str] = ()) -> None:
  """Lowers layers of exactly these classes with ``rule``; a rule that
  ``requires`` TL_* kernels is used only once they all exist."""
  for cls in layer_classes:
    _RULES[cls] = (rule, tuple(requires))


def native_rule(layer) -> Optional[Rule]:
  """The layer's kernel-flavor rule, or None (it then goes through the
  converter: :mod:`tflite_tl.lower.tl.fallback`)."""
  entry = _RULES.get(type(layer))
  if entry is None:
    return None
  rule, requires = entry
  if any(op not in tflm_ops.OPS for op in requires):
    return None
  return rule


def square(call: Call, value, what: str) -> int:
  values = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
  if len(set(values)) != 1:
    raise call.unsupported(f"non-square {what} {values} is not supported.")
  return int(values[0])
