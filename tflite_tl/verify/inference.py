"""The exported inference models in the real TFLM interpreter.

- predict model (float forward sharing the train step's variables): its
  logits against Keras', with the error measure of
  :mod:`tflite_tl.verify.errors`;
- int8 inference model: accuracy and arg-max agreement with the float model.
"""
import dataclasses

import numpy as np

from tflite_tl.flatbuffer import reader
from tflite_tl.flatbuffer.reader import ModelInfo
from tflite_tl.lower import quantize
from tflite_tl.tflm import run_model
from tflite_tl.tflm.runner import encode_images
from tflite_tl.verify import errors as errors_lib
from tflite_tl.verify.errors import round_figure


def run_batch1(tflite_bytes: bytes, images: np.ndarray) -> np.ndarray:
  """[N, K] outputs of a batch-1 model invoked once per image, in TFLM.

  Float images in [0, 1] are quantized for a model with an int8 image input
  (a kernel-flavor int8 predict model), as the board does."""
  images = encode_images(images, reader.inputs(tflite_bytes)[0])
  result = run_model(tflite_bytes, [[images[i:i + 1]]
                                    for i in range(len(images))])
  return np.concatenate([np.asarray(o[0]).reshape(1, -1)
                         for o in result.outputs])


# An int8 predict model passes with at most this fraction of images off by
# rounding ties; a wrong scale or layer moves nearly every image.
MAX_TIE_FRACTION = 0.05


@dataclasses.dataclass(frozen=True)
class InferenceParity:
  images: int
  max_rel_err_logits: float
  float_accuracy: float
  predict_accuracy: float
  int8_accuracy: float
  int8_agreement: float
  # Images whose predict-model logits differ from the reference beyond the
  # tolerance of a float comparison (an int8 predict model: by a rounding
  # tie somewhere in its integer arithmetic).
  differing_images: int = 0
  int8_predict: bool = False

  def verdict(self, tolerance: float) -> str:
    """``exact`` (within ``tolerance``); for an int8 predict model
    ``within_rounding`` when at most MAX_TIE_FRACTION of the images differ
    (each such image crosses a requantization tie: a float value within an
    ulp of a rounding boundary, rounded the other way by TFLM's summation
    order, moves its int8 value by one step); else ``failed``."""
    if self.max_rel_err_logits <= tolerance:
      return "exact"
    if (self.int8_predict and
        self.differing_images <= MAX_TIE_FRACTION * self.images):
      return "within_rounding"
    return "failed"

  def to_dict(self) -> dict:
    return {k: (round_figure(v, 4) if isinstance(v, float) else v)
            for k, v in dataclasses.asdict(self).items()}


def inference_parity(keras_logits: np.ndarray, predict_tflite: bytes,
                     int8_tflite: bytes, int8_info: ModelInfo,
                     images: np.ndarray, labels: np.ndarray,
                     tolerance: float = 1e-4) -> InferenceParity:
  """Predict model vs reference logits (Keras', or for an int8 predict
  model its integer reference), int8 model accuracy, both run in TFLM."""
  images = np.asarray(images, np.float32)
  labels = np.asarray(labels).reshape(-1)
  predict = run_batch1(predict_tflite, images)
  iq, oq = int8_info.inputs[0], int8_info.outputs[0]
  q_images = quantize.quantize_input(images, iq.scale, iq.zero_point)
  int8_out = quantize.dequantize(run_batch1(int8_tflite, q_images), oq.scale,
                                 oq.zero_point)
  ref = np.asarray(keras_logits, np.float32)
  scale = max(float(np.max(np.abs(ref))) if ref.size else 0.0,
              errors_lib.SCALE_FLOOR)
  per_image = np.max(np.abs(predict.astype(np.float64) - ref), axis=1) / scale
  return InferenceParity(
      differing_images=int(np.sum(per_image > tolerance)),
      int8_predict=reader.inputs(predict_tflite)[0].dtype == "INT8",
      images=int(len(images)),
      max_rel_err_logits=errors_lib.rel_err(predict, ref),
      float_accuracy=float(np.mean(ref.argmax(1) == labels)),
      predict_accuracy=float(np.mean(predict.argmax(1) == labels)),
      int8_accuracy=float(np.mean(int8_out.argmax(1) == labels)),
      int8_agreement=float(np.mean(int8_out.argmax(1) == ref.argmax(1))))
