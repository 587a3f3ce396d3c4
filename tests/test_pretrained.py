"""The shipped pretrained backbones load and reproduce their recorded accuracy."""
import functools
import os

import pytest

from tflite_tl import data, train
from tflite_tl.models import list_pretrained, load_pretrained, pretrained_info
from tflite_tl.models import pretrained, pretraining

SHIPPED = sorted(pretraining.PRESETS)


@functools.lru_cache(maxsize=None)
def _test_split(dataset, resolution, channels):
  ds = data.load(dataset, resolution=resolution, channels=channels)
  return ds.x_test, ds.y_test


def test_every_preset_is_shipped():
  assert set(SHIPPED) <= set(list_pretrained())


@pytest.mark.parametrize("name", SHIPPED)
def test_record_describes_the_files(name):
  info = pretrained_info(name)
  preset = pretraining.PRESETS[name]
  assert info["model"] == preset.model
  assert info["builder_kwargs"] == preset.builder_kwargs
  assert info["dataset"] == "fashion_mnist"
  assert info["command"].startswith("python -m benchmarks.pretrain")
  path = os.path.join(pretrained.PRETRAINED_DIR, info["weights_file"])
  assert os.path.getsize(path) == info["weights_bytes"] < 2 * 1024 * 1024
  assert pretrained.sha256_of(path) == info["weights_sha256"]


@pytest.mark.parametrize("name", SHIPPED)
def test_slice_accuracy_matches_record(name):
  info = pretrained_info(name)
  model = load_pretrained(name)
  assert model.count_params() == info["parameters"]
  x_test, y_test = _test_split(info["dataset"], info["resolution"],
                               info["input_channels"])
  start, size = info["slice"]["start"], info["slice"]["size"]
  assert size == 1000
  accuracy = train.evaluate(model, x_test[start:start + size],
                            y_test[start:start + size])
  assert abs(accuracy - info["slice"]["accuracy"]) <= 0.01
