import numpy as np
import pytest

from tflite_tl.data import cap_per_class, few_shot, stratified_split


def _labels():
  return np.repeat(np.arange(4), [10, 20, 5, 2])


def test_stratified_split_fractions_and_disjoint():
  y = _labels()
  train, test = stratified_split(y, 0.2, seed=0)
  assert len(np.intersect1d(train, test)) == 0
  assert len(train) + len(test) == len(y)
  assert np.bincount(y[test]).tolist() == [2, 4, 1, 1]  # every class >= 1
  assert np.bincount(y[train]).min() >= 1


def test_stratified_split_seeded():
  y = _labels()
  a, b = stratified_split(y, 0.3, 5), stratified_split(y, 0.3, 5)
  np.testing.assert_array_equal(a[1], b[1])
  assert not np.array_equal(a[1], stratified_split(y, 0.3, 6)[1])


def test_few_shot_counts_and_determinism():
  y = _labels()
  x = np.arange(len(y))
  xs, ys = few_shot(x, y, 2, seed=1)
  assert np.bincount(ys).tolist() == [2, 2, 2, 2]
  np.testing.assert_array_equal(y[xs], ys)
  np.testing.assert_array_equal(few_shot(x, y, 2, seed=1)[0], xs)


def test_few_shot_too_few_names_class():
  y = _labels()
  with pytest.raises(ValueError, match="class 3 has only 2 samples"):
    few_shot(np.zeros(len(y)), y, 3)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_bad_fraction(fraction):
  with pytest.raises(ValueError, match="test_fraction"):
    stratified_split(_labels(), fraction, 0)


def test_cap_per_class_keeps_small_classes_whole():
  y = _labels()
  kept = cap_per_class(np.arange(len(y)), y, 5, seed=0)
  assert np.bincount(y[kept]).tolist() == [5, 5, 5, 2]
  assert np.all(np.diff(kept) > 0)
  with pytest.raises(ValueError, match="max_per_class"):
    cap_per_class(np.arange(len(y)), y, 0, seed=0)
