"""The one error measure of TF-vs-TFLM comparisons."""
import numpy as np
import pytest

from tflite_tl.verify import errors


def test_relative_to_the_largest_entry():
  expected = np.array([10.0, 1e-6, -2.0], np.float32)
  actual = expected + np.array([0.0, 1e-6, 1e-3], np.float32)
  # The tiny entry doubled, yet the tensor is off by 1e-3 of its scale 10.
  assert errors.rel_err(actual, expected) == pytest.approx(1e-4, rel=1e-4)


def test_near_zero_tensors_are_judged_against_the_floor():
  expected = np.full(3, 1e-6, np.float32)
  actual = expected * 2
  assert errors.rel_err(actual, expected) == pytest.approx(
      1e-6 / errors.SCALE_FLOOR, rel=1e-4)
  assert errors.rel_err(np.zeros(2), np.zeros(2)) == 0.0
  assert errors.rel_err(np.zeros(0), np.zeros(0)) == 0.0


def test_shape_mismatch_is_an_error():
  with pytest.raises(ValueError, match="shapes"):
    errors.rel_err(np.zeros(2), np.zeros(3))


def test_run_errors_name_the_worst_tensor():
  ref = {"a": np.ones(3, np.float32), "b": np.full(2, 4.0, np.float32)}
  run = {"a": np.ones(3, np.float32), "b": np.array([4.0, 4.4], np.float32)}
  errs = errors.errors([2.0, 1.01], run, [2.0, 1.0], ref)
  assert errs["worst_param"] == "b" and errs["worst_param_scale"] == 4.0
  assert errs["max_rel_err_params"] == pytest.approx(0.1, rel=1e-5)
  assert errs["max_rel_err_loss"] == pytest.approx(0.01, rel=1e-5)
  assert not errors.within(errs, 1e-4) and errors.within(errs, 0.2)
  with pytest.raises(RuntimeError, match="'b'"):
    errors.errors([1.0], {"a": ref["a"]}, [1.0], ref)
