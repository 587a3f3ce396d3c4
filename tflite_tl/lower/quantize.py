"""Full-integer (int8) quantization of the inference model.

Post-training quantization with the TFLite converter; the representative data
are the first ``num_calibration`` of the given images, in order, so the result
is deterministic (the export passes a seeded sample of every class of the
training images). Inputs and outputs are int8 too: a camera's
bytes map to the input with the scale and zero point that the generated
tl_model_config.h states (kInferInputScale/ZeroPoint), and no float code is
needed on the board for inference-only deployments.

Optionally the model is first fine-tuned with quantization-aware training
(tfmot) for ``qat_epochs`` epochs.
"""
from typing import Optional

import numpy as np

from tflite_tl._compat import keras
from tflite_tl._compat import tf


class QuantizationError(RuntimeError):
  """The model could not be quantized to int8."""


def _forward_function(model: keras.Model, image_shape):
  @tf.function(input_signature=[
      tf.TensorSpec([1] + list(image_shape), tf.float32, "images")])
  def forward(images):
    return {"logits": model(images, training=False)}
  return forward


def quantize_int8(model: keras.Model, calibration_images: np.ndarray,
                  num_calibration: int = 100) -> bytes:
  """int8 .tflite (batch 1, int8 in/out) of ``model``'s forward pass."""
  images = np.asarray(calibration_images, np.float32)[:num_calibration]
  if len(images) == 0:
    raise QuantizationError("int8 quantization needs calibration images; the "
                            "target dataset's training split is empty.")
  image_shape = [int(d) for d in model.inputs[0].shape[1:]]
  forward = _forward_function(model, image_shape)

  def representative():
    for i in range(len(images)):
      yield [images[i:i + 1]]

  converter = tf.lite.TFLiteConverter.from_concrete_functions(
      [forward.get_concrete_function()], model)
  converter.optimizations = [tf.lite.Optimize.DEFAULT]
  converter.representative_dataset = representative
  converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
  converter.inference_input_type = tf.int8
  converter.inference_output_type = tf.int8
  try:
    return bytes(converter.convert())
  except Exception as e:  # the converter raises many unrelated types
    raise QuantizationError(
        f"int8 quantization of model '{model.name}' failed: {e}. Every layer "
        "needs an int8 TFLite kernel; see REPORT.md's op list.") from e


def quantization_aware_finetune(model: keras.Model, x: np.ndarray,
                                y: np.ndarray, *, epochs: int,
                                batch_size: int, learning_rate: float,
                                seed: int = 0) -> keras.Model:
  """A tfmot quantization-aware copy of ``model`` trained for ``epochs``.

  Returns a model whose int8 conversion keeps the accuracy QAT recovered.
  """
  # Lazy: tfmot takes seconds to import and only QAT (--qat_epochs) needs it.
  import tensorflow_model_optimization as tfmot  # pylint: disable=import-outside-toplevel
  try:
    qat = tfmot.quantization.keras.quantize_model(model)
  except Exception as e:
    raise QuantizationError(
        f"Quantization-aware training cannot wrap model '{model.name}': {e}. "
        "Use post-training quantization (--qat_epochs=0).") from e
  keras.utils.set_random_seed(seed)
  qat.compile(optimizer=keras.optimizers.SGD(learning_rate),
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  qat.fit(x, y, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0)
  return qat


def dequantize(values: np.ndarray, scale: Optional[float],
               zero_point: Optional[int]) -> np.ndarray:
  if scale is None:
    return np.asarray(values, np.float32)
  return (np.asarray(values, np.float32) - zero_point) * scale


def quantize_input(images: np.ndarray, scale: float,
                   zero_point: int) -> np.ndarray:
  q = np.round(np.asarray(images, np.float32) / scale) + zero_point
  return np.clip(q, -128, 127).astype(np.int8)
