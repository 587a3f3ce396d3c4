"""``lower_model``: a Keras model's training step and predict model as
TFLM-builtin .tflite files."""
import dataclasses
from typing import Dict, List, Mapping, Tuple

import numpy as np

from tflite_tl import flatbuffer
from tflite_tl._compat import keras
from tflite_tl._compat import tf
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
  """The lowered training step of a model and its predict model.

  Attributes:
    train_tflite: subgraph 0 is the train step. Inputs: ``images`` float32
      [B,H,W,C] in [0, 1] and ``labels`` int32 class indices [B] (their order
      in the interpreter is the converter's: see
      ``tflite_tl.tflm.runner.train_inputs_order``); output: the batch's mean
      loss before the update. Each invoke performs one SGD step on the
      resource variables.
    predict_tflite: float forward pass, batch 1; input images, output logits
      (probabilities if the Keras model ends in a softmax). Its trained
      parameters are resource variables with the train step's names and
      initial values, so on a board both models share one set of parameter
      buffers and predictions follow on-device training; give it other
      values with :func:`write_params`.
    param_specs: trained parameters, in ``model.trainable_weights`` order.
    module: the tf.Module; ``module.train_step`` is the TF reference.
  """
  train_tflite: bytes
  predict_tflite: bytes
  param_specs: List[ParamSpec]
  module: TrainStepModule

  @property
  def param_names(self) -> List[str]:
    return [p.name for p in self.param_specs]

  def train_ops(self) -> Dict[str, int]:
    return op_counts(self.train_tflite)


def _predict_function(module: TrainStepModule):
  """``module.infer`` that keeps the trained parameters resource variables.

  A function that only reads its variables has them frozen into constants by
  the converter, so its predictions could never reflect on-device training.
  Re-assigning every trained parameter to itself after the forward pass keeps
  them variables (VAR_HANDLE with the train model's names); the cost per
  invoke is one in-place copy of the (small) trained parameter set.
  """

  @tf.function(input_signature=module.infer.input_signature)
  def predict(images):
    out = module.infer(images)
    for var in module.params:
      var.assign(var)
    return out

  return predict


def lower_model(model: keras.Model, *, batch_size: int, learning_rate: float,
                momentum: float = 0.0, label_smoothing: float = 0.0,
                infer_batch_size: int = 1) -> LoweredModel:
  """Lowers ``model``'s training step and predict model to TFLM-builtin
  .tflite flatbuffers.

  Trains exactly ``model.trainable_weights`` with SGD (velocity v <- m v + g,
  w <- w - lr v when ``momentum`` > 0; equal to Keras' SGD) on the mean
  softmax cross-entropy of the logits (with optional label smoothing).
  BatchNorm layers are applied as the affine map of their moving statistics.
  Both models start from the model's current weights (the TF reference
  ``module.train_step`` moves them on).

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
  predict = convert_function(module, _predict_function(module))
  check_builtin_only(predict, "predict model")
  specs = [ParamSpec(n, tuple(v.shape.as_list()))
           for n, v in zip(module.param_names, module.params)]
  return LoweredModel(train, predict, specs, module)


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
