import numpy as np
import pytest

import tflite_fixtures as fx
from tflite_tl.flatbuffer import reader
from tflite_tl.firmware import op_resolver
from tflite_tl.lower import quantize


@pytest.fixture(scope="module")
def classifier():
  return fx.keras_classifier()


def test_ptq_is_full_int8_and_deterministic(classifier):
  images = fx.calibration_images()
  a = quantize.quantize_int8(classifier, images)
  assert a == quantize.quantize_int8(classifier, images)
  info = reader.model_info(a)
  assert info.inputs[0].dtype == "INT8" and info.outputs[0].dtype == "INT8"
  assert info.inputs[0].shape == (1,) + fx.IMAGE
  assert info.inputs[0].scale > 0
  assert "FULLY_CONNECTED" in op_resolver.op_counts(a)


def test_int8_model_tracks_float_in_tflm(classifier):
  from tflite_tl import tflm
  images = fx.calibration_images(8)
  int8 = quantize.quantize_int8(classifier, images)
  info = reader.model_info(int8)
  iq, oq = info.inputs[0], info.outputs[0]
  q = quantize.quantize_input(images, iq.scale, iq.zero_point)
  run = tflm.run_model(int8, [[q[i:i + 1]] for i in range(len(q))])
  got = quantize.dequantize(
      np.concatenate([o[0] for o in run.outputs]), oq.scale, oq.zero_point)
  ref = classifier.predict(images, verbose=0)
  # int8 rounding: a few output quantization steps at most.
  assert np.max(np.abs(got - ref)) <= 3 * oq.scale


def test_quantize_input_saturates():
  q = quantize.quantize_input(np.array([-1.0, 0.0, 0.6, 2.0]), 1 / 255, -128)
  assert q.tolist() == [-128, -128, 25, 127]
  assert quantize.dequantize(q, 1 / 255, -128)[1] == 0.0


def test_empty_calibration_is_a_clear_error(classifier):
  with pytest.raises(quantize.QuantizationError, match="calibration"):
    quantize.quantize_int8(classifier, np.zeros((0,) + fx.IMAGE, np.float32))


def test_quantization_aware_finetune_converts(classifier):
  images = fx.calibration_images(16)
  labels = np.arange(16) % fx.CLASSES
  qat = quantize.quantization_aware_finetune(
      classifier, images, labels, epochs=1, batch_size=8, learning_rate=0.01)
  int8 = quantize.quantize_int8(qat, images)
  assert reader.model_info(int8).inputs[0].dtype == "INT8"
