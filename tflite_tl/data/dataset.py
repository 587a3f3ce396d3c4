"""The in-memory dataset every loader returns."""
import dataclasses
from typing import Tuple

import numpy as np


@dataclasses.dataclass(frozen=True)
class Dataset:
  """A labelled image dataset split into train and test parts.

  Images are float32 NHWC in [0, 1]; labels are int64 class indices into
  ``class_names``.
  """
  name: str
  x_train: np.ndarray
  y_train: np.ndarray
  x_test: np.ndarray
  y_test: np.ndarray
  class_names: Tuple[str, ...]

  @property
  def num_classes(self) -> int:
    return len(self.class_names)

  @property
  def input_shape(self) -> Tuple[int, int, int]:
    """(height, width, channels) of one image."""
    return tuple(self.x_train.shape[1:])

  def __repr__(self) -> str:
    return (f"Dataset({self.name!r}, train={self.x_train.shape}, "
            f"test={self.x_test.shape}, classes={self.num_classes})")
