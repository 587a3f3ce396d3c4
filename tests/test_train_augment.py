import numpy as np
import pytest

from tflite_tl.train import augment


def _batch():
  return np.random.RandomState(0).rand(16, 6, 6, 1).astype(np.float32)


def test_flip_all_or_none():
  x = _batch()
  np.testing.assert_array_equal(
      augment.horizontal_flip(1.0)(x, np.random.RandomState(0)), x[:, :, ::-1])
  np.testing.assert_array_equal(
      augment.horizontal_flip(0.0)(x, np.random.RandomState(0)), x)


def test_translate_preserves_content_and_is_seeded():
  x = _batch()
  fn = augment.translate(2)
  a = fn(x, np.random.RandomState(3))
  np.testing.assert_array_equal(a, fn(x, np.random.RandomState(3)))
  assert a.shape == x.shape
  assert not np.array_equal(a, x)
  # Shifting never invents values: every output pixel is 0 or an input pixel.
  assert np.isin(a[a != 0], x).all()


def test_compose_and_errors():
  x = _batch()
  fn = augment.compose(augment.horizontal_flip(1.0), augment.translate(0))
  np.testing.assert_array_equal(fn(x, np.random.RandomState(0)), x[:, :, ::-1])
  with pytest.raises(ValueError):
    augment.translate(-1)
  with pytest.raises(ValueError):
    augment.horizontal_flip(2.0)
