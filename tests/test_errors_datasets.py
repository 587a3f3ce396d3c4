"""Catalogue of bad input, datasets (docs/errors.md#datasets): folders of
images as users collect them, and arrays handed to the Python API."""
import logging
import os

import numpy as np
import pytest
from PIL import Image

from tflite_tl import data
from tflite_tl import train
from tflite_tl._compat import keras


def _folder(root, spec):
  """spec: {class: [(file name, kind)]}; kinds: gray, rgb, rgba, palette,
  big, text, truncated."""
  rng = np.random.RandomState(0)
  for cls, files in spec.items():
    os.makedirs(os.path.join(root, cls), exist_ok=True)
    for name, kind in files:
      path = os.path.join(root, cls, name)
      if kind == "text":
        with open(path, "w") as f:
          f.write("not an image")
        continue
      pixels = {"gray": (10, 10), "rgb": (20, 12, 3), "rgba": (7, 7, 4),
                "palette": (9, 9), "big": (64, 48, 3),
                "truncated": (50, 50, 3)}[kind]
      img = Image.fromarray(rng.randint(0, 255, pixels).astype(np.uint8))
      img = img.convert("P") if kind == "palette" else img
      img.save(path)
      if kind == "truncated":
        with open(path, "rb") as f:
          head = f.read()
        with open(path, "wb") as f:
          f.write(head[:len(head) // 2])
  return str(root)


def _load(root):
  return data.load(f"folder:{root}", resolution=8, channels=1)


def _two(extra=()):
  return {"cat": [("a.png", "gray"), ("b.png", "gray"), *extra],
          "dog": [("a.png", "gray"), ("b.png", "gray")]}


def test_one_class_folder_is_refused(tmp_path):
  root = _folder(tmp_path / "d", {"cat": [("a.png", "gray"),
                                          ("b.png", "gray")]})
  with pytest.raises(ValueError, match=r"has one class \('cat'\); a "
                     "classifier needs at least two. Add a sub-directory"):
    _load(root)


def test_empty_class_is_named(tmp_path):
  root = _folder(tmp_path / "d", _two())
  os.makedirs(os.path.join(root, "bird"))
  with pytest.raises(ValueError, match="class 'bird' has no images "
                     r"\(.png, .jpg, .jpeg, .bmp\)"):
    _load(root)


def test_truncated_image_is_named(tmp_path):
  root = _folder(tmp_path / "d", _two([("c.png", "truncated")]))
  with pytest.raises(ValueError, match="Cannot read image .*cat/c.png: image "
                     "file is truncated"):
    _load(root)


def test_non_image_with_an_image_name_is_named(tmp_path):
  root = _folder(tmp_path / "d", _two([("c.jpg", "text")]))
  with pytest.raises(ValueError, match="Cannot read image .*cat/c.jpg: "
                     "cannot identify image file"):
    _load(root)


def test_non_image_files_are_skipped_with_a_warning(tmp_path, caplog):
  root = _folder(tmp_path / "d", _two([("README.txt", "text"),
                                       ("labels.csv", "text")]))
  with caplog.at_level(logging.WARNING):
    ds = _load(root)
  assert len(ds.y_train) + len(ds.y_test) == 4
  (record,) = [r for r in caplog.records if "skipped" in r.getMessage()]
  assert "skipped 2 file(s)" in record.getMessage()
  assert "README.txt" in record.getMessage()


def test_mixed_sizes_and_colour_modes_are_converted(tmp_path):
  root = _folder(tmp_path / "d", {
      "cat": [("a.png", "gray"), ("b.jpg", "rgb"), ("c.png", "rgba")],
      "dog": [("a.bmp", "palette"), ("b.png", "big")]})
  ds = data.load(f"folder:{root}", resolution=8, channels=3)
  assert ds.x_train.shape[1:] == (8, 8, 3)
  assert len(ds.y_train) + len(ds.y_test) == 5
  assert np.isfinite(ds.x_train).all()


def test_missing_folder_and_folder_without_classes(tmp_path):
  with pytest.raises(FileNotFoundError, match="does not exist"):
    _load(tmp_path / "nowhere")
  (tmp_path / "flat").mkdir()
  (tmp_path / "flat" / "a.png").write_bytes(b"")
  with pytest.raises(ValueError, match="has no class sub-directories"):
    _load(tmp_path / "flat")


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_pixels_through_the_api(value):
  images = np.full((2, 4, 4), 0.5, np.float32)
  images[1, 2, 3] = value
  with pytest.raises(ValueError, match=r"Float images must be finite; 1 "
                     r"pixel\(s\) are NaN or inf \(the first in image 1\)"):
    data.to_model_input(images, 4, 1)


def _classifier():
  inputs = keras.Input((4, 4, 1))
  x = keras.layers.Conv2D(2, 3)(inputs)
  x = keras.layers.GlobalAveragePooling2D()(x)
  return keras.Model(inputs, keras.layers.Dense(3)(x))


def test_fit_refuses_nan_images():
  x = np.full((4, 4, 4, 1), 0.5, np.float32)
  x[2, 0, 0, 0] = np.nan
  with pytest.raises(ValueError, match="training data: image 2 has NaN or "
                     "inf pixels"):
    train.fit(_classifier(), x, np.array([0, 1, 2, 0]), epochs=1,
              learning_rate=0.1)


@pytest.mark.parametrize("labels, span", [([0, 3], r"\[0, 3\]"),
                                          ([-1, 0], r"\[-1, 0\]")])
def test_fit_refuses_labels_out_of_range(labels, span):
  x = np.full((2, 4, 4, 1), 0.5, np.float32)
  with pytest.raises(ValueError, match=f"labels span {span} but model "
                     ".* has 3 outputs"):
    train.fit(_classifier(), x, np.array(labels), epochs=1,
              learning_rate=0.1)


def test_fewer_samples_than_shots():
  x = np.zeros((6, 4, 4, 1), np.float32)
  y = np.array([0, 0, 0, 1, 1, 2])
  with pytest.raises(ValueError, match=r"few_shot\(k=2\): class 2 has only 1 "
                     "samples. Use k <= 1"):
    data.few_shot(x, y, 2)
  with pytest.raises(ValueError, match="3-way 2-shot tasks with 1 queries "
                     "need 3 classes with >= 3 samples; only 1"):
    data.episodes(x, y, ways=3, shots=2, queries=1)


@pytest.mark.parametrize("kw, message", [
    ({"resolution": 0}, "resolution must be positive, got 0."),
    ({"channels": 2}, r"channels must be 1 \(gray\) or 3 \(RGB\), got 2."),
    ({"max_per_class": 0}, "max_per_class must be a positive integer, got 0."),
    ({"test_fraction": 1.5}, r"test_fraction must be in \(0, 1\), got 1.5."),
])
def test_loader_arguments(tmp_path, kw, message):
  root = _folder(tmp_path / "d", _two())
  args = dict(resolution=8, channels=1)
  args.update(kw)
  with pytest.raises(ValueError, match=message):
    data.load(f"folder:{root}", **args)
