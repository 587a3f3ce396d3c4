"""Inference parity: the predict model against its reference and the int8
inference model against the float one, both run in TFLM."""
import numpy as np
import pytest

import tflite_fixtures as fx
from tflite_tl._compat import tf
from tflite_tl.flatbuffer import reader
from tflite_tl.lower import quantize
from tflite_tl.tflm import run_model
from tflite_tl.verify import inference


@pytest.fixture(scope="module")
def models():
  classifier = fx.keras_classifier()
  images = fx.calibration_images(64)
  float_tflite = tf.lite.TFLiteConverter.from_keras_model(
      classifier).convert()
  int8 = quantize.quantize_int8(classifier, images)
  return classifier, images, float_tflite, int8


def test_int8_agreement_is_the_int8_models_own(models):
  """The int8 model gets each image quantized once, with its input scale:
  its arg-max then agrees with the float model's on nearly every image."""
  classifier, images, float_tflite, int8 = models
  logits = classifier.predict(images, verbose=0)
  labels = logits.argmax(1)
  info = reader.model_info(int8)
  parity = inference.inference_parity(logits, float_tflite, int8, info,
                                      images, labels)
  assert parity.verdict(1e-4) == "exact"
  assert parity.float_accuracy == parity.predict_accuracy == 1.0
  assert parity.int8_agreement >= 0.95
  # The same figure as the int8 model run directly on the quantized images.
  iq, oq = info.inputs[0], info.outputs[0]
  q = quantize.quantize_input(images, iq.scale, iq.zero_point)
  run = run_model(int8, [[q[i:i + 1]] for i in range(len(q))])
  direct = quantize.dequantize(np.concatenate([o[0] for o in run.outputs]),
                               oq.scale, oq.zero_point)
  assert parity.int8_agreement == np.mean(direct.argmax(1) == labels)
  assert parity.int8_accuracy == parity.int8_agreement
