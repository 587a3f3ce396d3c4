"""``lower_model``: a Keras model's training step and predict model as
TFLM-builtin .tflite files."""
import dataclasses
import math
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np

from tflite_tl import flatbuffer
from tflite_tl._compat import keras
from tflite_tl._compat import tf
from tflite_tl.lower.builtins import check_builtin_only
from tflite_tl.lower.builtins import op_counts
from tflite_tl.lower.convert import convert_function
from tflite_tl.lower.fake_quant import fake_quantized_kernels
from tflite_tl.lower.int8_constants import Int8Stats
from tflite_tl.lower.int8_constants import store_int8
from tflite_tl.lower.module import TrainStepModule
from tflite_tl.lower.tl import graphs as tl_graphs
from tflite_tl.lower.tl import params as tl_params
from tflite_tl.lower.tl import quantization as tl_quantization
from tflite_tl.lower.tl.reference import QuantizedTrainStep
from tflite_tl.lower.tl.rule_base import Policy


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
    module: the tf.Module; ``module.train_step`` is the TF reference (for an
      int8 lowering a :class:`QuantizedTrainStep`).
    int8_stats: builtin int8 only: what storing the frozen kernels as int8
      changed (:class:`tflite_tl.lower.int8_constants.Int8Stats`).
    kernels, precision: how it was lowered. A kernel-flavor graph ("tl")
      keeps its parameters in variable tensors (initial values in their
      buffers) instead of resource variables, its int8 images with scale
      1/255 and zero point -128; see docs/kernel_flavor.md.
  """
  train_tflite: bytes
  predict_tflite: bytes
  param_specs: List[ParamSpec]
  module: TrainStepModule
  kernels: str = "builtin"
  precision: str = "float"
  int8_stats: Optional[Int8Stats] = None

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
    for var in module.params + module.index_variables():
      var.assign(var)
    return out

  return predict


KERNELS = ("builtin", "tl")
PRECISIONS = ("float", "int8")
# Builtin int8: FULLY_CONNECTED weights above this many elements are rebuilt
# from int8 in row blocks of at most this size (the float32 block is the
# arena transient; see tflite_tl.lower.int8_constants).
INT8_CHUNK_ELEMENTS = 32768


def lower_model(model: keras.Model, *, batch_size: int, learning_rate: float,
                momentum: float = 0.0, label_smoothing: float = 0.0,
                infer_batch_size: int = 1, kernels: str = "builtin",
                precision: str = "float",
                calibration_images: Optional[np.ndarray] = None,
                qas: bool = True,
                int8_chunk_elements: Optional[int] = INT8_CHUNK_ELEMENTS,
                variable_channels: bool = False) -> LoweredModel:
  """Lowers ``model``'s training step and predict model to .tflite
  flatbuffers for TFLM.

  Trains exactly ``model.trainable_weights`` with SGD (velocity v <- m v + g,
  w <- w - lr v when ``momentum`` > 0; equal to Keras' SGD) on the mean
  softmax cross-entropy of the logits (with optional label smoothing).
  BatchNorm layers are applied as the affine map of their moving statistics.
  Both models start from the model's current weights (the TF reference
  ``module.train_step`` moves them on).

  Args:
    kernels: "builtin" (TFLM builtin ops only, through the TF converter; runs
      in any TFLM and in the ``tflite_micro`` wheel) or "tl" (a graph written
      op by op with the TL_* training kernels of ``tflm_kernels/``, variable
      tensors updated in place; needs TFLM built with those kernels, see
      ``TFLM_ROOT``).
    precision: "float", or "int8". With kernels "tl", frozen layers run
      TFLM's int8 kernels on per-channel int8 weights with activation scales
      calibrated on ``calibration_images``; the backward pass is float32.
      With kernels "builtin", frozen conv/depthwise/dense kernels are
      stored per-channel int8 in the flatbuffer (no float32 copy) and
      rebuilt by DEQUANTIZE + MUL where an op reads them; activations, the
      backward pass and the trained parameters stay float32, and the TF
      reference trains on the same int8-valued kernels (docs/lower.md).
    qas: kernels "tl", int8 only: quantization-aware scaling of the updates
      (False trains the integer copies with plain SGD, an ablation).
    int8_chunk_elements: kernels "builtin", int8 only: FULLY_CONNECTED
      weights above this many elements are rebuilt in row blocks of at most
      this size (None: whole), which bounds the float32 transient in the
      arena.
    variable_channels: kernels "builtin" only: each channel-sparse layer
      (methods tinytrain, sparse_update) reads its chosen channels from two
      int32 variables (``<layer>/channels``, ``<layer>/channel_slots``)
      instead of constants, so that a board can re-choose them with every
      shape and the arena unchanged (``TrainStepModule.choose_channels``
      gives the values to write).

  Raises:
    UnsupportedLayerError: a layer (named) has no lowering.
    NonBuiltinOpError: the converted model still holds an op TFLM lacks.
  """
  if not isinstance(model, keras.Model):
    raise ValueError(
        f"lower_model: expected a tf-keras Model, got {type(model).__name__}. "
        "Import tflite_tl before tensorflow so that tf-keras (Keras 2) is "
        "used.")
  if not (isinstance(learning_rate, (int, float))
          and math.isfinite(learning_rate) and learning_rate > 0):
    raise ValueError(f"learning_rate must be a finite number > 0, got "
                     f"{learning_rate!r}.")
  if kernels not in KERNELS:
    raise ValueError(f"kernels must be one of {KERNELS}, got {kernels!r}.")
  if precision not in PRECISIONS:
    raise ValueError(f"precision must be one of {PRECISIONS}, got "
                     f"{precision!r}.")
  if variable_channels and kernels != "builtin":
    raise ValueError("variable_channels needs kernels='builtin' (the TL_* "
                     "sparse kernels take their channels as constants).")
  if kernels == "builtin" and precision == "int8":
    with fake_quantized_kernels(model) as frozen:
      lowered = _lower_builtin(
          model, batch_size=batch_size, learning_rate=learning_rate,
          momentum=momentum, label_smoothing=label_smoothing,
          infer_batch_size=infer_batch_size,
          variable_channels=variable_channels)
    train, stats = store_int8(lowered.train_tflite, frozen,
                              int8_chunk_elements)
    predict, _ = store_int8(lowered.predict_tflite, frozen,
                            int8_chunk_elements)
    check_builtin_only(train, "train step")
    check_builtin_only(predict, "predict model")
    return dataclasses.replace(lowered, train_tflite=train,
                               predict_tflite=predict, precision="int8",
                               int8_stats=stats)
  if kernels == "tl":
    return lower_tl(model, batch_size=batch_size, learning_rate=learning_rate,
                    momentum=momentum, label_smoothing=label_smoothing,
                    precision=precision,
                    calibration_images=calibration_images, qas=qas)
  return _lower_builtin(model, batch_size=batch_size,
                        learning_rate=learning_rate, momentum=momentum,
                        label_smoothing=label_smoothing,
                        infer_batch_size=infer_batch_size,
                        variable_channels=variable_channels)


def _lower_builtin(model: keras.Model, *, batch_size: int,
                   learning_rate: float, momentum: float,
                   label_smoothing: float,
                   infer_batch_size: int,
                   variable_channels: bool = False) -> LoweredModel:
  """The builtin flavor of :func:`lower_model` in float32."""
  module = TrainStepModule(
      model, batch_size=batch_size, learning_rate=learning_rate,
      momentum=momentum, label_smoothing=label_smoothing,
      infer_batch_size=infer_batch_size, variable_channels=variable_channels)
  train = convert_function(module, module.train_step)
  check_builtin_only(train, "train step")
  predict = convert_function(module, _predict_function(module))
  check_builtin_only(predict, "predict model")
  specs = [ParamSpec(n, tuple(v.shape.as_list()))
           for n, v in zip(module.param_names, module.params)]
  return LoweredModel(train, predict, specs, module)


def lower_tl(model: keras.Model, *, batch_size: int, learning_rate: float,
             momentum: float = 0.0, label_smoothing: float = 0.0,
             precision: str = "float",
             calibration_images: Optional[np.ndarray] = None,
             qas: bool = True) -> LoweredModel:
  """The kernel flavor of :func:`lower_model` (``kernels="tl"``)."""
  if momentum:
    raise ValueError("kernels='tl' trains with plain SGD (momentum=0); "
                     f"got momentum={momentum}.")
  quantization = None
  if precision == "int8":
    if calibration_images is None:
      raise ValueError(
          "precision='int8' needs calibration_images (e.g. the target "
          "dataset's training images) to choose the activation scales.")
    quantization = tl_quantization.ranges_to_quantization(
        tl_quantization.calibrate(model, calibration_images))
  policy = Policy(precision=precision, quantization=quantization, qas=qas,
                  learning_rate=float(learning_rate))
  train = tl_graphs.train_graph(model, batch_size=batch_size, policy=policy,
                                label_smoothing=label_smoothing)
  predict = tl_graphs.predict_graph(model, policy=policy)
  if precision == "int8":
    module = QuantizedTrainStep(model, batch_size=batch_size, policy=policy,
                                label_smoothing=label_smoothing)
  else:
    module = TrainStepModule(model, batch_size=batch_size,
                             learning_rate=learning_rate,
                             label_smoothing=label_smoothing)
  specs = [ParamSpec(n, tuple(v.shape.as_list()))
           for n, v in zip(module.param_names, module.params)]
  return LoweredModel(train.tflite, predict.tflite, specs, module,
                      kernels="tl", precision=precision)


def read_params(tflite_bytes: bytes) -> Dict[str, np.ndarray]:
  """{variable name: initial value} of every trained parameter of a lowered
  .tflite (Keras weight names without ``:0``; momentum buffers
  ``<name>/momentum``): the constants its init subgraph (CALL_ONCE) assigns,
  or, for a kernel-flavor graph, its variable tensors' initial values."""
  if tl_params.is_tl_graph(tflite_bytes):
    return tl_params.read_params(tflite_bytes)
  return flatbuffer.initial_values(tflite_bytes)


def write_params(tflite_bytes: bytes,
                 params: Mapping[str, np.ndarray]) -> bytes:
  """A copy of the lowered .tflite whose variables start at ``params``.

  Every name must be a variable of the model and every array must keep that
  variable's shape; variables not named keep their values.
  """
  if tl_params.is_tl_graph(tflite_bytes):
    return tl_params.write_params(tflite_bytes, params)
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
