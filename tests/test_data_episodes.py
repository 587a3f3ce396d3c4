"""N-way K-shot episodes."""
import numpy as np
import pytest

from tflite_tl import data


def _data(n_per_class=30, classes=8):
  y = np.repeat(np.arange(classes), n_per_class)
  x = np.arange(len(y), dtype=np.float32).reshape(-1, 1, 1, 1)
  return x, y


@pytest.mark.parametrize("shots", [1, 5, 10])
def test_episode_shapes_labels_and_disjoint_sets(shots):
  x, y = _data()
  ep, = data.episodes(x, y, ways=5, shots=shots, queries=7, seed=3)
  assert ep.ways == 5 and ep.shots == shots
  assert len(ep.support_y) == 5 * shots and len(ep.query_y) == 5 * 7
  for label, c in enumerate(ep.classes):
    s = ep.support_x[ep.support_y == label].ravel().astype(int)
    q = ep.query_x[ep.query_y == label].ravel().astype(int)
    assert set(y[s]) == {c} and set(y[q]) == {c}
    assert not set(s) & set(q)
  assert len(set(ep.classes)) == 5


def test_episodes_are_seeded_and_indexable():
  x, y = _data()
  a = data.episodes(x, y, count=4, seed=1)
  b = data.episodes(x, y, count=2, seed=1, start=2)
  for ea, eb in zip(a[2:], b):
    assert ea.classes == eb.classes
    np.testing.assert_array_equal(ea.support_x, eb.support_x)
  other = data.episodes(x, y, count=1, seed=2)[0]
  assert (other.classes != a[0].classes
          or not np.array_equal(other.query_x, a[0].query_x))


def test_too_few_samples_or_classes_is_named():
  x, y = _data(n_per_class=6, classes=4)
  with pytest.raises(ValueError, match="need 5 classes"):
    data.episodes(x, y, ways=5, shots=1, queries=1)
  with pytest.raises(ValueError, match=">= 11 samples"):
    data.episodes(x, y, ways=2, shots=10, queries=1)
  with pytest.raises(ValueError, match="ways"):
    data.episodes(x, y, ways=1)
