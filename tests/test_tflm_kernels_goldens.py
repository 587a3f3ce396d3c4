"""Golden file format (tflite_tl.kernels.goldens) and generator reproducibility."""
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from tflite_tl.kernels import goldens

_REPO = pathlib.Path(__file__).resolve().parents[1]
_TESTDATA = _REPO / "tflm_kernels" / "testdata"


def test_round_trip_is_exact():
  rng = np.random.default_rng(0)
  case = goldens.GoldenCase("c", {"lr": 0.125, "stride": 2}, {
      "f": rng.standard_normal((2, 3, 5)).astype(np.float32),
      "i": np.array([-7, 0, 9], np.int32),
      "q": np.array([[-128, 127]], np.int8),
      "m": np.array([0, 255], np.uint8),
      "empty": np.zeros((0, 3, 3, 2), np.float32),
  })
  (back,) = goldens.parse_cases(goldens.format_cases([case], "header"))
  assert back.name == "c" and back.params == {"lr": 0.125, "stride": 2}
  for key, array in case.tensors.items():
    assert back.tensors[key].dtype == array.dtype
    np.testing.assert_array_equal(back.tensors[key], array)  # bit-exact floats


def test_unsupported_dtype_is_named():
  with pytest.raises(TypeError, match="float64"):
    goldens.format_cases([goldens.GoldenCase("c", {}, {"x": np.zeros(2)})], "")


def test_truncated_file_is_reported():
  with pytest.raises(ValueError, match="has no 'end'"):
    goldens.parse_cases("case a\ntensor x f32 1 2\n1 2\n")
  with pytest.raises(ValueError, match="unexpected end of file"):
    goldens.parse_cases("case a\ntensor x f32 1 3\n1 2\n")


def test_generator_reproduces_the_checked_in_goldens(tmp_path):
  script = _TESTDATA / "generate_goldens.py"
  subprocess.run([sys.executable, str(script), f"--out_dir={tmp_path}"], check=True,
                 capture_output=True, cwd=_REPO)
  checked_in = sorted(p.name for p in _TESTDATA.glob("*.golden"))
  generated = sorted(p.name for p in tmp_path.glob("*.golden"))
  assert generated == checked_in and checked_in
  for name in checked_in:
    assert (tmp_path / name).read_bytes() == (_TESTDATA / name).read_bytes(), name
