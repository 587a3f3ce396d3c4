import gzip
import os
import pickle

import numpy as np
import pytest

from tflite_tl.data import animal_mnist


def test_reads_package_files_without_importing_tensorflow_code():
  raw = animal_mnist.read()
  assert raw.images.shape == (10000, 28, 28) and raw.images.dtype == np.uint8
  assert np.bincount(raw.labels).tolist() == [1000] * 10
  assert raw.class_names[6] == "Giraffe"


class _Evil:

  def __reduce__(self):
    return (os.system, ("echo pwned",))


def test_restricted_unpickler_rejects_code(tmp_path):
  for name in (animal_mnist.DATA_FILE, animal_mnist.LABEL_FILE):
    with gzip.open(tmp_path / name, "wb") as f:
      pickle.dump(_Evil(), f)
  with pytest.raises(pickle.UnpicklingError, match="only numpy arrays"):
    animal_mnist.read(str(tmp_path))


def test_user_root_round_trip(tmp_path):
  images = np.zeros((4, 28, 28), np.uint8)
  labels = np.array([0, 1, 2, 3], np.int64)
  for name, array in ((animal_mnist.DATA_FILE, images),
                      (animal_mnist.LABEL_FILE, labels)):
    with gzip.open(tmp_path / name, "wb") as f:
      pickle.dump(array, f)
  raw = animal_mnist.read(str(tmp_path))
  np.testing.assert_array_equal(raw.labels, labels)
