"""TFLM subprocess runner: outputs, arena report, crash/failure reporting."""
import numpy as np
import pytest

from tflite_tl._compat import tf
from tflite_tl.tflm import NonBuiltinOpError
from tflite_tl.tflm import TflmRuntimeError
from tflite_tl.tflm import check_builtin_only
from tflite_tl.tflm import measure_arena
from tflite_tl.tflm import op_counts
from tflite_tl.tflm import parse_allocations
from tflite_tl.tflm import run_model
from tflite_tl.tflm.runner import describe_failure

_REPORT = """\
[RecordingMicroAllocator] Arena allocation total 161808 bytes
[RecordingMicroAllocator] Arena allocation head 148112 bytes
[RecordingMicroAllocator] Arena allocation tail 13696 bytes
[RecordingMicroAllocator] 'TfLiteEvalTensor data' used 2424 bytes with alignment overhead (requested 2424 bytes for 101 allocations)
[RecordingMicroAllocator] 'NodeAndRegistration struct' used 5376 bytes with alignment overhead (requested 5376 bytes for 84 NodeAndRegistration structs)
"""


def _convert(fn, *specs):
  converter = tf.lite.TFLiteConverter.from_concrete_functions(
      [tf.function(fn, input_signature=list(specs)).get_concrete_function()])
  return converter.convert()


@pytest.fixture(scope="module")
def small_model():
  w = np.random.RandomState(0).randn(6, 3).astype(np.float32)
  return w, _convert(lambda x: tf.nn.relu(tf.matmul(x, w)),
                     tf.TensorSpec([2, 6], tf.float32))


def test_parse_allocations():
  report = parse_allocations(_REPORT)
  assert (report.total, report.head, report.tail) == (161808, 148112, 13696)
  assert report.breakdown == {"TfLiteEvalTensor data": 2424,
                              "NodeAndRegistration struct": 5376}
  assert report.source == "measured (TFLM recording allocator)"
  with pytest.raises(ValueError, match="RecordingMicroAllocator"):
    parse_allocations("nothing here")


def test_run_model_matches_tf_and_measures_arena(small_model):
  w, model = small_model
  xs = [np.random.RandomState(i).randn(2, 6).astype(np.float32)
        for i in range(3)]
  result = run_model(model, [[x] for x in xs], measure_arena=True)
  for x, outs in zip(xs, result.outputs):
    np.testing.assert_allclose(outs[0], np.maximum(x @ w, 0), rtol=1e-5)
  # Input (48 B) and output (24 B) live in the planned head.
  assert result.arena.head >= 72
  assert result.arena.total == result.arena.head + result.arena.tail
  assert measure_arena(model).total == result.arena.total


def test_wrong_input_shape_is_rejected(small_model):
  _, model = small_model
  with pytest.raises(ValueError, match=r"shape \[2, 6\]"):
    run_model(model, [[np.zeros((1, 6), np.float32)]])


def test_op_missing_in_tflm_is_reported_by_name():
  model = _convert(lambda x: tf.tile(x, [1, 3]) * 2.0,
                   tf.TensorSpec([2, 2], tf.float32))
  assert op_counts(model) == {"MUL": 1, "TILE": 1}
  with pytest.raises(NonBuiltinOpError, match="TILE"):
    check_builtin_only(model)
  with pytest.raises(TflmRuntimeError, match="TILE"):
    run_model(model, [[np.zeros((2, 2), np.float32)]])


def test_crash_description_names_signal_and_op():
  text = describe_failure(
      -6, "Node SOFTMAX (number 63f) failed to prepare with status 1\n")
  assert "SIGABRT" in text and "SOFTMAX" in text
  assert "exit code 3" in describe_failure(3, "")


def test_encode_images_quantizes_floats_and_keeps_int8_codes():
  from tflite_tl.flatbuffer.reader import TensorInfo
  from tflite_tl.tflm.runner import encode_images
  int8 = TensorInfo("images", (1, 2), "INT8", scale=1 / 255, zero_point=-128)
  floats = np.array([[0.0, 0.6]], np.float32)
  codes = encode_images(floats, int8)
  assert codes.dtype == np.int8 and codes.tolist() == [[-128, 25]]
  # Codes are not quantized a second time (that saturates every pixel).
  assert encode_images(codes, int8).tolist() == [[-128, 25]]
  float_input = TensorInfo("images", (1, 2), "FLOAT32")
  assert encode_images(floats, float_input).tolist() == floats.tolist()
