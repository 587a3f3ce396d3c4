"""Catalogue of bad input, .tflite files (docs/errors.md#tflite-files):
corrupt, truncated or non-TFLite bytes given to the TFLM tools get one
clear error before any interpreter reads them; an interpreter that fails
becomes TflmRuntimeError, never a dead caller."""
import numpy as np
import pytest

from cli_run import assert_one_line_error
from cli_run import run_cli
from error_fixtures import train_step
from tflite_tl import tflm
from tflite_tl.flatbuffer.integrity import TfliteFileError
from tflite_tl.flatbuffer.integrity import check_intact


def _flipped(data: bytes) -> bytes:
  out = bytearray(data)
  for k in range(200, len(out), 97):
    out[k] ^= 0xFF
  return bytes(out)


@pytest.mark.parametrize("make, message", [
    (lambda m: b"", r"model: not a \.tflite flatbuffer \(0 bytes, no 'TFL3' "
     "identifier at byte 4"),
    (lambda m: b"\x89PNG\r\n\x1a\n" + bytes(200), r"not a \.tflite "
     r"flatbuffer \(208 bytes, no 'TFL3' identifier at byte 4; starts with "
     r"b'\\x89PNG"),
    (lambda m: m[:len(m) // 2], r"model: a truncated or corrupt \.tflite "
     r"\(\d+ bytes; .*\); pass the bytes of a \.tflite written by tflite-tl"),
    (lambda m: m[:100], r"a truncated or corrupt \.tflite \(100 bytes"),
    (_flipped, r"a truncated or corrupt \.tflite"),
], ids=["empty", "png", "half", "first_100_bytes", "bit_flips"])
def test_measure_arena_refuses_broken_bytes(make, message):
  with pytest.raises(TfliteFileError, match=message) as e:
    tflm.measure_arena(make(train_step()))
  assert "\n" not in str(e.value)


def test_a_path_instead_of_bytes_says_read_the_file():
  with pytest.raises(TfliteFileError, match=r"model: expected the bytes of "
                     r"a \.tflite model, got str \(a path: read the file "
                     r"first, open\(path, 'rb'\)\.read\(\)\)"):
    tflm.measure_arena("train.tflite")


def test_run_train_steps_refuses_a_truncated_train_step():
  x = np.zeros((2, 8, 8, 1), np.float32)
  with pytest.raises(TfliteFileError, match=r"^train step: a truncated or "
                     "corrupt"):
    tflm.run_train_steps(train_step()[:-300], [(x, np.array([0, 1]))])


def test_run_model_refuses_none():
  with pytest.raises(TfliteFileError, match="expected the bytes of a .tflite "
                     "model, got NoneType"):
    tflm.run_model(None, [[]])


def test_intact_model_passes():
  check_intact(train_step())
  check_intact(bytearray(train_step()))


def test_interpreter_failure_is_an_error_not_a_crash_of_the_caller():
  # A well-formed model TFLM cannot run: an output read past the tensors it
  # allocated (the input index of the labels given an image's shape).
  with pytest.raises(ValueError, match="Input .* has shape"):
    tflm.run_model(train_step(), [[np.zeros((2, 8, 8, 1), np.float32),
                                   np.zeros((2, 8, 8, 1), np.float32)]])
  described = tflm.runner.describe_failure(-6, "Node CONV_2D (number 3) "
                                           "failed to prepare\nAborted")
  assert described.startswith("The TFLM interpreter crashed with signal "
                              "SIGABRT. TFLM reported: Node CONV_2D")


def test_benchmark_cli_given_a_corrupt_export_is_one_line(tmp_path):
  (tmp_path / "report.json").write_text('{"config": {"seed": 0}}')
  (tmp_path / "train.tflite").write_bytes(b"garbage")
  proc = run_cli("benchmarks.device_training", f"--export={tmp_path}")
  assert_one_line_error(proc, f"device_training failed: {tmp_path}/"
                        "train.tflite: not a .tflite flatbuffer (7 bytes",
                        "re-export it")
