"""Batch augmentations for ``fit(augment=...)``, pure NumPy and seeded.

Each factory returns ``augment(images, rng) -> images`` that draws all of its
randomness from the ``rng`` that ``fit`` derives from (seed, epoch), so runs
are reproducible. Images are float32 NHWC.
"""
from typing import Callable

import numpy as np

Augment = Callable[[np.ndarray, np.random.RandomState], np.ndarray]


def horizontal_flip(probability: float = 0.5) -> Augment:
  """Mirrors each image left-right with ``probability`` (not for digits/text)."""
  if not 0.0 <= probability <= 1.0:
    raise ValueError(f"probability must be in [0, 1], got {probability!r}.")

  def augment(images: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    flip = rng.rand(len(images)) < probability
    out = images.copy()
    out[flip] = images[flip, :, ::-1]
    return out

  return augment


def translate(max_pixels: int) -> Augment:
  """Shifts each image by up to ``max_pixels`` in x and y, filling with zeros.

  Zero is the background of every bundled gray dataset (dark background).
  """
  if not isinstance(max_pixels, (int, np.integer)) or max_pixels < 0:
    raise ValueError(f"max_pixels must be a non-negative int, got "
                     f"{max_pixels!r}.")

  def augment(images: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    m = int(max_pixels)
    shifts = rng.randint(-m, m + 1, size=(len(images), 2))
    if m == 0:
      return images
    _, h, w, _ = images.shape
    padded = np.pad(images, ((0, 0), (m, m), (m, m), (0, 0)))
    out = np.empty_like(images)
    for i, (dy, dx) in enumerate(shifts):
      out[i] = padded[i, m - dy:m - dy + h, m - dx:m - dx + w]
    return out

  return augment


def compose(*augments: Augment) -> Augment:
  """Applies ``augments`` in order with the same ``rng``."""

  def augment(images: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    for fn in augments:
      images = fn(images, rng)
    return images

  return augment
