"""scikit-learn's handwritten digits (``sklearn.datasets.load_digits``).

1797 gray 8x8 images with 17 intensity levels (0-16), 10 classes. Loaded via
scikit-learn's public loader; intensities are scaled by 1/16 to [0, 1]. No
official split: the loader splits by seed.
"""
import os
from typing import Optional

import numpy as np

from tflite_tl.data.errors import DatasetNotInstalledError
from tflite_tl.data.raw import RawImages, root_file

PIP_NAME = "scikit-learn"
FILE = "digits.csv.gz"
CLASS_NAMES = tuple(str(d) for d in range(10))
_LEVELS = 16.0


def _from_csv(path: str):
  table = np.loadtxt(path, delimiter=",", dtype=np.float64)
  if table.ndim != 2 or table.shape[1] != 65:
    raise ValueError(f"{path}: expected rows of 64 pixels and a label, got "
                     f"shape {table.shape}.")
  return table[:, :-1], table[:, -1]


def read(root: Optional[str] = None) -> RawImages:
  if root is None:
    try:
      # Imported here: only this dataset needs scikit-learn, and its absence
      # becomes a DatasetNotInstalledError naming the install command.
      from sklearn.datasets import load_digits  # pylint: disable=g-import-not-at-top
    except ImportError as e:
      raise DatasetNotInstalledError(
          "digits", "Python package 'sklearn' is not installed",
          f"pip install {PIP_NAME}") from e
    bunch = load_digits()
    pixels, labels = bunch.data, bunch.target
  else:
    pixels, labels = _from_csv(root_file("digits", root, FILE))
  images = (pixels.reshape(-1, 8, 8) / _LEVELS).astype(np.float32)
  return RawImages(np.clip(images, 0.0, 1.0), labels.astype(np.int64),
                   CLASS_NAMES)
