import os

import numpy as np
import pytest
from PIL import Image

from tflite_tl import data


def _write(path, array, fmt):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.fromarray(array).save(path, format=fmt)


def _make_tree(root, split=None):
  rng = np.random.RandomState(0)
  for c, name in enumerate(["dog", "cat"]):
    for i in range(6):
      base = os.path.join(root, split, name) if split else os.path.join(root, name)
      size = 10 + 3 * i  # mixed sizes
      if i % 3 == 0:
        _write(os.path.join(base, f"{i}.png"),
               rng.randint(0, 256, (size, size, 3), np.uint8), "PNG")
      elif i % 3 == 1:
        _write(os.path.join(base, f"{i}.JPG"),
               rng.randint(0, 256, (size, size), np.uint8), "JPEG")
      else:
        _write(os.path.join(base, f"{i}.bmp"),
               np.full((size, size, 3), 40 * c, np.uint8), "BMP")
  return root


def test_folder_classes_sorted_and_shapes(tmp_path):
  root = _make_tree(str(tmp_path))
  (tmp_path / "cat" / "notes.txt").write_text("ignored")
  ds = data.load(f"folder:{root}", resolution=16, channels=3, test_fraction=0.5)
  assert ds.class_names == ("cat", "dog")
  assert ds.x_train.shape == (6, 16, 16, 3) and ds.x_test.shape == (6, 16, 16, 3)
  assert np.bincount(ds.y_test).tolist() == [3, 3]


def test_folder_deterministic(tmp_path):
  root = _make_tree(str(tmp_path))
  a = data.load_folder(root, resolution=8, channels=1, seed=2)
  b = data.load_folder(root, resolution=8, channels=1, seed=2)
  np.testing.assert_array_equal(a.x_train, b.x_train)
  np.testing.assert_array_equal(a.y_train, b.y_train)


def test_train_test_subfolders_are_kept(tmp_path):
  _make_tree(str(tmp_path), "train")
  _make_tree(str(tmp_path), "test")
  ds = data.load_folder(str(tmp_path), resolution=8, channels=1)
  assert len(ds.y_train) == 12 and len(ds.y_test) == 12


def test_missing_folder(tmp_path):
  with pytest.raises(FileNotFoundError, match="does not exist"):
    data.load(f"folder:{tmp_path}/nope", resolution=8, channels=1)


def test_empty_class_and_no_classes(tmp_path):
  with pytest.raises(ValueError, match="no class sub-directories"):
    data.load_folder(str(tmp_path), resolution=8, channels=1)
  (tmp_path / "empty").mkdir()
  with pytest.raises(ValueError, match="'empty' has no images"):
    data.load_folder(str(tmp_path), resolution=8, channels=1)


def test_corrupt_image_named(tmp_path):
  (tmp_path / "a").mkdir()
  (tmp_path / "a" / "bad.png").write_bytes(b"not a png")
  _write(str(tmp_path / "b" / "ok.png"), np.zeros((4, 4), np.uint8), "PNG")
  with pytest.raises(ValueError, match="bad.png"):
    data.load_folder(str(tmp_path), resolution=8, channels=1)
