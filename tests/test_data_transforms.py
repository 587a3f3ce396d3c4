import numpy as np
import pytest

from tflite_tl.data import convert_channels, resize, to_float, to_model_input


def test_uint8_scaled_to_unit_range():
  x = to_model_input(np.array([[[0, 255], [51, 102]]], np.uint8), 2, 1)
  assert x.dtype == np.float32 and x.shape == (1, 2, 2, 1)
  np.testing.assert_allclose(x[0, :, :, 0], [[0, 1], [0.2, 0.4]], atol=1e-7)


def test_float_out_of_range_rejected():
  with pytest.raises(ValueError, match=r"\[0, 1\]"):
    to_float(np.full((1, 2, 2), 3.0))


def test_gray_to_rgb_and_back():
  gray = np.random.RandomState(0).rand(2, 4, 4, 1).astype(np.float32)
  rgb = convert_channels(gray, 3)
  assert rgb.shape == (2, 4, 4, 3)
  np.testing.assert_allclose(convert_channels(rgb, 1), gray, atol=1e-6)


def test_rgb_to_gray_uses_luma():
  pixel = np.array([[[[1.0, 0.0, 0.0]]]], np.float32)
  np.testing.assert_allclose(convert_channels(pixel, 1)[0, 0, 0, 0], 0.299,
                             rtol=1e-6)


def test_rgba_drops_alpha():
  rgba = np.zeros((1, 2, 2, 4), np.uint8)
  rgba[..., 3] = 255
  assert to_model_input(rgba, 2, 3).max() == 0.0


def test_shrink_is_antialiased():
  # A one-pixel checkerboard averages to grey when shrunk 4x; a plain
  # bilinear shrink would sample it and keep 0/1 values.
  board = (np.indices((32, 32)).sum(0) % 2).astype(np.float32)[None, ..., None]
  small = resize(board, 8)
  np.testing.assert_allclose(small, 0.5, atol=0.05)


def test_upsample_keeps_range_and_constant():
  x = np.full((3, 5, 5, 1), 0.25, np.float32)
  np.testing.assert_allclose(resize(x, (7, 9)), 0.25, atol=1e-6)
  assert resize(x, (7, 9)).shape == (3, 7, 9, 1)


def test_deterministic_across_chunks():
  x = np.random.RandomState(1).randint(0, 256, (5000, 10, 10), np.uint8)
  a = to_model_input(x, 13, 3)
  b = np.concatenate([to_model_input(x[:7], 13, 3), to_model_input(x[7:], 13, 3)])
  np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("bad", [{"channels": 2}, {"resolution": 0}])
def test_bad_arguments(bad):
  args = {"resolution": 4, "channels": 1}
  args.update(bad)
  with pytest.raises(ValueError):
    to_model_input(np.zeros((1, 4, 4), np.uint8), **args)
