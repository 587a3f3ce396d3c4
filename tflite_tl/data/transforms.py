"""Conversion of raw images to a model's input: resolution, channels, range.

Images keep their aspect ratio assumptions simple: every source here is square
or is resized to a square ``resolution`` directly. Resizing is bilinear and
antialiased when shrinking (a plain bilinear shrink aliases thin strokes such as
MNIST digits); it runs through ``tf.image.resize`` on the CPU, which is
deterministic. Conversion happens in chunks so that a 70k-image dataset never
needs a second full-size float copy.
"""
from typing import Union, Tuple

import numpy as np

from tflite_tl._compat import tf

# ITU-R BT.601 luma weights: what PIL and OpenCV use for RGB -> gray.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_CHUNK = 2048

Resolution = Union[int, Tuple[int, int]]


def _hw(resolution: Resolution) -> Tuple[int, int]:
  if isinstance(resolution, (int, np.integer)):
    h = w = int(resolution)
  else:
    h, w = (int(v) for v in resolution)
  if h < 1 or w < 1:
    raise ValueError(f"resolution must be positive, got {resolution!r}.")
  return h, w


def to_float(images: np.ndarray) -> np.ndarray:
  """uint8 [0, 255] (or float already in [0, 1]) -> float32 in [0, 1]."""
  images = np.asarray(images)
  if images.dtype == np.uint8:
    return images.astype(np.float32) / np.float32(255.0)
  images = images.astype(np.float32, copy=False)
  if images.size and not np.all(np.isfinite(images)):
    bad = int(np.count_nonzero(~np.isfinite(images)))
    first = int(np.argwhere(~np.isfinite(images))[0][0])
    raise ValueError(
        f"Float images must be finite; {bad} pixel(s) are NaN or inf (the "
        f"first in image {first}). Fix or drop those images (e.g. "
        "np.nan_to_num) before training on them.")
  if images.size and (images.min() < 0.0 or images.max() > 1.0):
    raise ValueError(
        "Float images must be in [0, 1]; got values in "
        f"[{images.min():g}, {images.max():g}]. Scale them first (uint8 "
        "images are scaled automatically).")
  return images


def convert_channels(images: np.ndarray, channels: int) -> np.ndarray:
  """NHWC float images with 1 or 3 channels -> ``channels`` (1 or 3).

  Gray -> RGB repeats the plane; RGB -> gray uses BT.601 luma. An RGBA input
  drops its alpha channel first.
  """
  if channels not in (1, 3):
    raise ValueError(f"channels must be 1 (gray) or 3 (RGB), got {channels!r}.")
  have = images.shape[-1]
  if have == 4:
    images, have = images[..., :3], 3
  if have == channels:
    return images
  if have == 1 and channels == 3:
    return np.repeat(images, 3, axis=-1)
  if have == 3 and channels == 1:
    return np.tensordot(images, _LUMA, axes=([-1], [0]))[..., None].astype(
        np.float32)
  raise ValueError(f"Cannot convert images with {have} channels to {channels}; "
                   "supported inputs have 1, 3 or 4 channels.")


def resize(images: np.ndarray, resolution: Resolution) -> np.ndarray:
  """Bilinear resize of float NHWC images, antialiased when shrinking."""
  h, w = _hw(resolution)
  if images.shape[1:3] == (h, w):
    return images
  out = tf.image.resize(images, (h, w), method="bilinear", antialias=True)
  # Bilinear interpolation cannot leave [0, 1] but antialias filters round.
  return np.clip(out.numpy(), 0.0, 1.0)


def to_model_input(images: np.ndarray, resolution: Resolution,
                   channels: int) -> np.ndarray:
  """Raw images -> float32 NHWC in [0, 1] at ``resolution`` with ``channels``.

  Args:
    images: (N, H, W) gray or (N, H, W, C) with C in {1, 3, 4}; uint8 in
      [0, 255] or float in [0, 1].
    resolution: output side (int) or (height, width).
    channels: 1 (gray) or 3 (RGB).
  """
  images = np.asarray(images)
  if images.ndim == 3:
    images = images[..., None]
  if images.ndim != 4:
    raise ValueError("images must be (N, H, W) or (N, H, W, C); got shape "
                     f"{images.shape}.")
  h, w = _hw(resolution)
  if channels not in (1, 3):
    raise ValueError(f"channels must be 1 (gray) or 3 (RGB), got {channels!r}.")
  out = np.empty((images.shape[0], h, w, channels), dtype=np.float32)
  for start in range(0, images.shape[0], _CHUNK):
    chunk = to_float(images[start:start + _CHUNK])
    out[start:start + _CHUNK] = resize(convert_channels(chunk, channels), (h, w))
  return out
