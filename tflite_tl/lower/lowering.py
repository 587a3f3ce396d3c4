"""``lower_model``: a Keras model's training step as TFLM-builtin .tflite files."""
import dataclasses
from typing import Dict, List, Mapping, Tuple

import numpy as np

from tflite_tl import flatbuffer
from tflite_tl._compat import keras
from tflite_tl.lower.builtins import check_builtin_only
from tflite_tl.lower.builtins import op_counts
from tflite_tl.lower.convert import convert_function
from tflite_tl.lower.module import TrainStepModule


@dataclasses.dataclass(frozen=True)
class ParamSpec:
  """A trained parameter: variable name (Keras weight name without ':0')."""
  name: str
  shape: Tuple[int, ...]
  dtype: str = "float32"


@dataclasses.dataclass
class LoweredModel:
  """The lowered training step of a model.

  Attributes:
    train_tflite: subgraph 0 is the train step. Inputs: ``images`` float32
      [B,H,W,C] in [0, 1] and ``labels`` int32 class indices [B] (their order
      in the interpreter is the converter's: see
      ``tflite_tl.tflm.runner.train_inputs_order``); output: the batch's mean
      loss before the update. Each invoke performs one SGD step on the
      resource variables.
    infer_tflite: float forward pass, batch 1; input images, output logits
      (probabilities if the Keras model ends in a softmax). The converter
      freezes the parameters into constants (the graph never assigns them),
      so it is a plain float model ready for quantization; rebuild it for new
      parameter values with :meth:`infer_tflite_with`.
    param_specs: trained parameters, in ``model.trainable_weights`` order.
    module: the tf.Module; ``module.train_step`` is the TF reference.
  """
  train_tflite: bytes
  infer_tflite: bytes
  param_specs: List[ParamSpec]
  module: TrainStepModule

  @property
  def param_names(self) -> List[str]:
    return [p.name for p in self.param_specs]

  def train_ops(self) -> Dict[str, int]:
    return op_counts(self.train_tflite)

  def infer_tflite_with(self, params: Mapping[str, np.ndarray]) -> bytes:
    """The inference model with the given trained parameters (e.g. read from
    a device's train.tflite state with :func:`read_params`)."""
    unknown = sorted(set(params) - set(self.param_names))
    if unknown:
      raise KeyError(f"Not trained parameters of this model: {unknown}.")
    saved = self.module.param_values()
    try:
      for name, var in zip(self.param_names, self.module.params):
        if name in params:
          var.assign(np.asarray(params[name], np.float32))
      infer = convert_function(self.module, self.module.infer)
    finally:
      for name, var in zip(self.param_names, self.module.params):
        var.assign(saved[name])
    check_builtin_only(infer, "inference model")
    return infer


def lower_model(model: keras.Model, *, batch_size: int, learning_rate: float,
                momentum: float = 0.0, label_smoothing: float = 0.0,
                infer_batch_size: int = 1) -> LoweredModel:
  """Lowers ``model``'s training step to TFLM-builtin .tflite flatbuffers.

  Trains exactly ``model.trainable_weights`` with SGD (velocity v <- m v + g,
  w <- w - lr v when ``momentum`` > 0; equal to Keras' SGD) on the mean
  softmax cross-entropy of the logits (with optional label smoothing).
  BatchNorm layers are applied as the affine map of their moving statistics.

  Raises:
    UnsupportedLayerError: a layer (named) has no builtin-only lowering.
    NonBuiltinOpError: the converted model still holds an op TFLM lacks.
  """
  module = TrainStepModule(
      model, batch_size=batch_size, learning_rate=learning_rate,
      momentum=momentum, label_smoothing=label_smoothing,
      infer_batch_size=infer_batch_size)
  train = convert_function(module, module.train_step)
  check_builtin_only(train, "train step")
  infer = convert_function(module, module.infer)
  check_builtin_only(infer, "inference model")
  specs = [ParamSpec(n, tuple(v.shape.as_list()))
           for n, v in zip(module.param_names, module.params)]
  return LoweredModel(train, infer, specs, module)


def read_params(tflite_bytes: bytes) -> Dict[str, np.ndarray]:
  """{variable name: initial value} of every resource variable of a lowered
  .tflite: the constant its init subgraph (CALL_ONCE) assigns. Names are the
  Keras weight names without ``:0``; momentum buffers ``<name>/momentum``."""
  return flatbuffer.initial_values(tflite_bytes)


def write_params(tflite_bytes: bytes,
                 params: Mapping[str, np.ndarray]) -> bytes:
  """A copy of the lowered .tflite whose variables start at ``params``.

  Every name must be a variable of the model and every array must keep that
  variable's shape; variables not named keep their values.
  """
  return flatbuffer.with_initial_values(tflite_bytes, params)


def assign_to_keras(model: keras.Model,
                    params: Mapping[str, np.ndarray]) -> None:
  """Copies trained parameters (by variable name) into the Keras model's
  weights, e.g. to quantize or save the model trained on a device."""
  by_name = {w.name.split(":")[0]: w for w in model.weights}
  unknown = sorted(set(params) - set(by_name))
  if unknown:
    raise KeyError(f"Model '{model.name}' has no weights {unknown}.")
  for name, value in params.items():
    by_name[name].assign(np.asarray(value, np.float32))
