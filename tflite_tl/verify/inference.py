"""The exported inference models in the real TFLM interpreter.

- predict model (float forward sharing the train step's variables): its
  logits against Keras', with the error measure of
  :mod:`tflite_tl.verify.errors`;
- int8 inference model: accuracy and arg-max agreement with the float model.
"""
import dataclasses

import numpy as np

from tflite_tl.flatbuffer.reader import ModelInfo
from tflite_tl.lower import quantize
from tflite_tl.tflm import run_model
from tflite_tl.verify import errors as errors_lib
from tflite_tl.verify.errors import round_figure


def run_batch1(tflite_bytes: bytes, images: np.ndarray) -> np.ndarray:
  """[N, K] outputs of a batch-1 model invoked once per image, in TFLM."""
  result = run_model(tflite_bytes, [[images[i:i + 1]]
                                    for i in range(len(images))])
  return np.concatenate([np.asarray(o[0]).reshape(1, -1)
                         for o in result.outputs])


@dataclasses.dataclass(frozen=True)
class InferenceParity:
  images: int
  max_rel_err_logits: float
  float_accuracy: float
  predict_accuracy: float
  int8_accuracy: float
  int8_agreement: float

  def to_dict(self) -> dict:
    return {k: (round_figure(v, 4) if isinstance(v, float) else v)
            for k, v in dataclasses.asdict(self).items()}


def inference_parity(keras_logits: np.ndarray, predict_tflite: bytes,
                     int8_tflite: bytes, int8_info: ModelInfo,
                     images: np.ndarray, labels: np.ndarray
                     ) -> InferenceParity:
  """Predict model vs Keras logits, int8 model accuracy, both run in TFLM."""
  images = np.asarray(images, np.float32)
  labels = np.asarray(labels).reshape(-1)
  predict = run_batch1(predict_tflite, images)
  iq, oq = int8_info.inputs[0], int8_info.outputs[0]
  q_images = quantize.quantize_input(images, iq.scale, iq.zero_point)
  int8_out = quantize.dequantize(run_batch1(int8_tflite, q_images), oq.scale,
                                 oq.zero_point)
  ref = np.asarray(keras_logits, np.float32)
  return InferenceParity(
      images=int(len(images)),
      max_rel_err_logits=errors_lib.rel_err(predict, ref),
      float_accuracy=float(np.mean(ref.argmax(1) == labels)),
      predict_accuracy=float(np.mean(predict.argmax(1) == labels)),
      int8_accuracy=float(np.mean(int8_out.argmax(1) == labels)),
      int8_agreement=float(np.mean(int8_out.argmax(1) == ref.argmax(1))))
