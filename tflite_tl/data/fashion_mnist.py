"""Fashion-MNIST (Xiao et al. 2017): 70k 28x28 gray clothing images, 10 classes.

Read from the IDX files installed by the Debian package ``dataset-fashion-mnist``
or from a user directory holding the same four files (gzip-compressed or not).
The official 60k/10k train/test split is kept.
"""
import os
from typing import Optional

import numpy as np

from tflite_tl.data.errors import DatasetNotInstalledError
from tflite_tl.data.idx import read_idx
from tflite_tl.data.raw import RawImages

DEFAULT_ROOT = "/usr/share/datasets/fashion-mnist"
INSTALL = "apt-get install dataset-fashion-mnist"
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
               "Shirt", "Sneaker", "Bag", "Ankle boot")
_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def _find(root: str, stem: str, user_root: bool) -> str:
  for name in (stem + ".gz", stem):
    path = os.path.join(root, name)
    if os.path.isfile(path):
      return path
  if user_root:
    raise FileNotFoundError(
        f"Dataset 'fashion_mnist': neither {stem}.gz nor {stem} is in root "
        f"directory {root!r}. It must hold the four Fashion-MNIST IDX files.")
  raise DatasetNotInstalledError("fashion_mnist", f"{stem}.gz not found in "
                                 f"{root}", INSTALL)


def read(root: Optional[str] = None) -> RawImages:
  user_root = root is not None
  root = root if user_root else DEFAULT_ROOT
  if user_root and not os.path.isdir(root):
    raise FileNotFoundError(
        f"Dataset 'fashion_mnist': root directory {root!r} does not exist. "
        "Pass the directory holding the four IDX files, or root=None for "
        f"{DEFAULT_ROOT} ({INSTALL}).")
  arrays = {key: read_idx(_find(root, stem, user_root))
            for key, stem in _FILES.items()}
  for split in ("train", "test"):
    if len(arrays["x_" + split]) != len(arrays["y_" + split]):
      raise ValueError(f"Fashion-MNIST in {root}: {split} images and labels "
                       "differ in count.")
  images = np.concatenate([arrays["x_train"], arrays["x_test"]])
  labels = np.concatenate([arrays["y_train"], arrays["y_test"]]).astype(np.int64)
  is_test = np.zeros(len(labels), dtype=bool)
  is_test[len(arrays["y_train"]):] = True
  return RawImages(images, labels, CLASS_NAMES, is_test)
