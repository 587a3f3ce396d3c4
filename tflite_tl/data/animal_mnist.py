"""Animal-MNIST: 10k 28x28 gray animal silhouettes, 10 classes of 1000.

Read from the data files of the PyPI package ``animal-mnist`` (importing the
package itself pulls in TensorFlow datasets code, so the files are read
directly). They are gzip-compressed pickles of one numpy array each; they are
unpickled with a restricted unpickler that can only rebuild numpy arrays, so a
tampered file cannot run code. Samples are stored sorted by label; label i is
the i-th name of ``CLASS_NAMES`` (checked by viewing samples of each label).
No official split: the loader splits by seed.
"""
import gzip
import io
import os
import pickle
from typing import Optional

import numpy as np

from tflite_tl.data.raw import RawImages, package_file, root_file

PIP_NAME = "animal-mnist==0.4"
CLASS_NAMES = ("Bear", "Bird", "Cat", "Cow", "Dog", "Elephant", "Giraffe",
               "Horse", "Sheep", "Zebra")
DATA_FILE = "animal_data_version_3.gz"
LABEL_FILE = "animal_label_version_3.gz"
_PACKAGE_DIR = os.path.join("data", "Animal_MNIST")

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class _ArrayUnpickler(pickle.Unpickler):

  def find_class(self, module, name):
    if (module, name) not in _ALLOWED:
      raise pickle.UnpicklingError(
          f"Animal-MNIST file refers to {module}.{name}; only numpy arrays "
          "are accepted.")
    if module == "numpy.core.multiarray":  # numpy 2 renamed the module
      module = "numpy._core.multiarray" if hasattr(np, "_core") else module
    return super().find_class(module, name)


def _load_array(path: str) -> np.ndarray:
  with gzip.open(path, "rb") as f:
    array = _ArrayUnpickler(io.BytesIO(f.read())).load()
  if not isinstance(array, np.ndarray):
    raise ValueError(f"{path}: expected a numpy array, got {type(array)}.")
  return array


def read(root: Optional[str] = None) -> RawImages:
  if root is None:
    data = package_file("animal_mnist", "animal_mnist",
                        os.path.join(_PACKAGE_DIR, DATA_FILE), PIP_NAME)
    labels = package_file("animal_mnist", "animal_mnist",
                          os.path.join(_PACKAGE_DIR, LABEL_FILE), PIP_NAME)
  else:
    data = root_file("animal_mnist", root, DATA_FILE)
    labels = root_file("animal_mnist", root, LABEL_FILE)
  images, y = _load_array(data), _load_array(labels).astype(np.int64)
  if images.dtype != np.uint8 or images.ndim != 3 or len(images) != len(y):
    raise ValueError(f"Animal-MNIST files in {os.path.dirname(data)} have an "
                     f"unexpected layout: images {images.dtype}{images.shape}, "
                     f"labels {y.shape}.")
  return RawImages(images, y, CLASS_NAMES)
