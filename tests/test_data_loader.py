import gzip
import os
import shutil

import numpy as np
import pytest

from tflite_tl import data

# (name, images in train+test, native side, classes)
_NAMED = [
    ("fashion_mnist", 70000, 28, 10),
    ("animal_mnist", 10000, 28, 10),
    ("mnist", 5000, 28, 10),
    ("lfw", 200, 25, 2),
    ("digits", 1797, 8, 10),
]


def _check(ds, resolution, channels, num_classes):
  for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
    assert x.dtype == np.float32 and y.dtype == np.int64
    assert x.shape == (len(y), resolution, resolution, channels)
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert x.max() > 0.5  # really images, not all black
    assert set(np.unique(y)) == set(range(num_classes))
  assert ds.num_classes == num_classes == len(ds.class_names)


@pytest.fixture(scope="module")
def fashion():
  return data.load("fashion_mnist", resolution=28, channels=1)


@pytest.mark.parametrize("name,total,side,classes", _NAMED)
def test_named_dataset_shapes_and_labels(name, total, side, classes, fashion):
  ds = fashion if name == "fashion_mnist" else data.load(
      name, resolution=side, channels=1)
  _check(ds, side, 1, classes)
  assert len(ds.y_train) + len(ds.y_test) == total


def test_fashion_mnist_keeps_official_split(fashion):
  ds = fashion
  assert len(ds.y_train) == 60000 and len(ds.y_test) == 10000
  assert ds.class_names[0] == "T-shirt/top"
  # First training label of Fashion-MNIST is 9 (ankle boot).
  assert ds.y_train[0] == 9


@pytest.mark.parametrize("name", ["animal_mnist", "lfw", "digits"])
def test_split_depends_only_on_seed(name):
  a = data.load(name, resolution=16, channels=1, seed=3)
  b = data.load(name, resolution=16, channels=1, seed=3)
  c = data.load(name, resolution=16, channels=1, seed=4)
  np.testing.assert_array_equal(a.x_train, b.x_train)
  np.testing.assert_array_equal(a.y_test, b.y_test)
  assert not np.array_equal(a.x_test, c.x_test)


def test_split_is_stratified_with_requested_fraction():
  ds = data.load("animal_mnist", resolution=28, channels=1, test_fraction=0.1)
  np.testing.assert_array_equal(np.bincount(ds.y_test), [100] * 10)


def test_resize_and_rgb():
  ds = data.load("digits", resolution=32, channels=3)
  _check(ds, 32, 3, 10)
  np.testing.assert_array_equal(ds.x_train[..., 0], ds.x_train[..., 2])


def test_lfw_faces_are_label_one():
  ds = data.load("lfw", resolution=25, channels=1)
  assert ds.class_names == ("not_face", "face")
  assert np.bincount(ds.y_train).tolist() == [80, 80]


def test_unknown_name_lists_supported():
  with pytest.raises(ValueError, match="fashion_mnist.*animal_mnist"):
    data.load("cifar10", resolution=32, channels=3)


def test_missing_root_dir_is_named():
  with pytest.raises(FileNotFoundError, match="/no/such/dir"):
    data.load("fashion_mnist", resolution=28, channels=1, root="/no/such/dir")


def test_root_without_files_is_named(tmp_path):
  with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
    data.load("fashion_mnist", resolution=28, channels=1, root=str(tmp_path))


def test_missing_package_names_install_command(monkeypatch):
  import importlib.util
  real = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, "find_spec",
                      lambda n, *a: None if n == "animal_mnist" else real(n, *a))
  with pytest.raises(data.DatasetNotInstalledError,
                     match=r"pip install animal-mnist"):
    data.load("animal_mnist", resolution=28, channels=1)


def test_missing_debian_package_names_apt_command(monkeypatch, tmp_path):
  from tflite_tl.data import fashion_mnist
  monkeypatch.setattr(fashion_mnist, "DEFAULT_ROOT", str(tmp_path / "absent"))
  with pytest.raises(data.DatasetNotInstalledError,
                     match="apt-get install dataset-fashion-mnist"):
    data.load("fashion_mnist", resolution=28, channels=1)


def test_user_root_with_uncompressed_idx(tmp_path):
  from tflite_tl.data import fashion_mnist
  for name in os.listdir(fashion_mnist.DEFAULT_ROOT):
    if name.startswith("t10k"):
      src = os.path.join(fashion_mnist.DEFAULT_ROOT, name)
      with gzip.open(src) as f, open(tmp_path / name[:-3], "wb") as out:
        shutil.copyfileobj(f, out)
    else:
      shutil.copy(os.path.join(fashion_mnist.DEFAULT_ROOT, name), tmp_path)
  ours = data.load("fashion_mnist", resolution=28, channels=1,
                   root=str(tmp_path))
  assert len(ours.y_test) == 10000


def test_list_datasets():
  assert set(data.list_datasets()) == {n for n, *_ in _NAMED}


def test_max_per_class_caps_each_split_deterministically():
  a = data.load("fashion_mnist", resolution=14, channels=3, max_per_class=20)
  b = data.load("fashion_mnist", resolution=14, channels=3, max_per_class=20)
  assert np.bincount(a.y_train).tolist() == [20] * 10
  assert np.bincount(a.y_test).tolist() == [20] * 10
  assert a.x_train.shape == (200, 14, 14, 3)
  np.testing.assert_array_equal(a.x_train, b.x_train)


def test_test_fraction_repools_official_split():
  ds = data.load("fashion_mnist", resolution=28, channels=1, test_fraction=0.5,
                 max_per_class=30)
  assert np.bincount(ds.y_test).tolist() == [30] * 10
  assert np.bincount(ds.y_train).tolist() == [30] * 10
