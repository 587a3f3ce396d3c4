"""LFW subset bundled with scikit-image (``skimage.data.lfw_subset``).

200 gray 25x25 crops: the first 100 are faces, the next 100 non-faces from the
same photos' backgrounds (Huang et al. 2012). Labels: 0 = not a face, 1 = face.
The ``.npy`` file ships inside the scikit-image wheel (no download). No
official split: the loader splits by seed.
"""
import os
from typing import Optional

import numpy as np

from tflite_tl.data.raw import RawImages, package_file, root_file

PIP_NAME = "scikit-image"
FILE = "lfw_subset.npy"
CLASS_NAMES = ("not_face", "face")


def read(root: Optional[str] = None) -> RawImages:
  if root is None:
    path = package_file("lfw", "skimage", os.path.join("data", FILE), PIP_NAME)
  else:
    path = root_file("lfw", root, FILE)
  images = np.load(path, allow_pickle=False)
  if images.shape != (200, 25, 25):
    raise ValueError(f"{path}: expected 200 images of 25x25, got "
                     f"{images.shape}.")
  if images.dtype != np.uint8:  # stored as float64 in [0, 1]
    images = np.clip(images, 0.0, 1.0).astype(np.float32)
  labels = np.concatenate([np.ones(100), np.zeros(100)]).astype(np.int64)
  return RawImages(images, labels, CLASS_NAMES)
