"""What a dataset source hands to the loader before conversion."""
import dataclasses
import os
import importlib.util
from typing import Optional, Tuple

import numpy as np

from tflite_tl.data.errors import DatasetNotInstalledError


@dataclasses.dataclass(frozen=True)
class RawImages:
  """Images as stored by the source, (N, H, W) or (N, H, W, C).

  uint8 in [0, 255] or float32 in [0, 1].

  ``is_test`` marks an official test split; None means the source has none and
  the loader splits by seed.
  """
  images: np.ndarray
  labels: np.ndarray
  class_names: Tuple[str, ...]
  is_test: Optional[np.ndarray] = None


def package_file(dataset: str, package: str, relative_path: str,
                 pip_name: str) -> str:
  """Path of a data file shipped inside an installed Python package.

  The package is located without importing it (some import TensorFlow or
  download on import).
  """
  spec = importlib.util.find_spec(package)
  if spec is None or not spec.submodule_search_locations:
    raise DatasetNotInstalledError(
        dataset, f"Python package {package!r} is not installed",
        f"pip install {pip_name}")
  for base in spec.submodule_search_locations:
    path = os.path.join(base, relative_path)
    if os.path.isfile(path):
      return path
  raise DatasetNotInstalledError(
      dataset, f"package {package!r} has no data file {relative_path!r}",
      f"pip install --force-reinstall {pip_name}")


def root_file(dataset: str, root: str, filename: str) -> str:
  """Path of ``filename`` inside a user-given ``root`` directory."""
  if not os.path.isdir(root):
    raise FileNotFoundError(
        f"Dataset {dataset!r}: root directory {root!r} does not exist. Pass "
        "the directory that holds the dataset files, or root=None for the "
        "installed copy.")
  path = os.path.join(root, filename)
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f"Dataset {dataset!r}: {filename!r} not found in root directory "
        f"{root!r}.")
  return path
