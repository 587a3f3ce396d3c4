"""Tests for tflite_tl.models.pretraining (recipe, presets, flags merge)."""
import dataclasses

import numpy as np
import pytest

from tflite_tl.models import list_models, pretraining


def test_presets_name_registered_models_with_small_inputs():
  for name, preset in pretraining.PRESETS.items():
    assert preset.model in list_models(), name
    assert preset.builder_kwargs["input_channels"] == 1
    assert preset.builder_kwargs["resolution"] <= 64


def test_augment_is_seeded_and_keeps_shape_and_range():
  images = np.random.RandomState(0).rand(6, 12, 12, 1).astype(np.float32)
  augment = pretraining.flip_and_shift(max_shift=2, flip=True)
  a = augment(images, np.random.RandomState(5))
  b = augment(images, np.random.RandomState(5))
  np.testing.assert_array_equal(a, b)
  assert a.shape == images.shape and a.dtype == np.float32
  assert a.min() >= 0 and a.max() <= 1
  assert not np.array_equal(a, images)


def test_augment_can_be_identity():
  images = np.random.RandomState(0).rand(3, 8, 8, 1).astype(np.float32)
  augment = pretraining.flip_and_shift(max_shift=0, flip=False)
  np.testing.assert_array_equal(augment(images, np.random.RandomState(1)),
                                images)


def test_shift_moves_content_by_at_most_max_shift():
  image = np.zeros((1, 9, 9, 1), np.float32)
  image[0, 4, 4, 0] = 1
  augment = pretraining.flip_and_shift(max_shift=2, flip=False)
  for seed in range(10):
    y, x = np.argwhere(augment(image, np.random.RandomState(seed))[0, ..., 0])[0]
    assert abs(y - 4) <= 2 and abs(x - 4) <= 2


def test_config_uses_preset_and_flag_overrides():
  config = pretraining.config_from_overrides(
      "mcunet", None, {"resolution": 40, "channels": None},
      {"epochs": 2, "seed": None})
  preset = pretraining.PRESETS["mcunet"]
  assert config["name"] == "mcunet"
  assert config["resolution"] == 40
  assert config["channels"] == 1
  assert config["width_multiplier"] == preset.builder_kwargs["width_multiplier"]
  assert config["recipe"] == dataclasses.replace(preset.recipe, epochs=2)


def test_model_without_preset_needs_an_input_size():
  with pytest.raises(ValueError, match="--resolution"):
    pretraining.config_from_overrides("proxyless_mobile", None, {}, {})
  config = pretraining.config_from_overrides(
      "proxyless_mobile", "px", {"resolution": 32, "channels": 1}, {})
  assert config["recipe"] == pretraining.Recipe()


def test_command_line_reproduces_the_preset():
  preset = pretraining.PRESETS["mobilenet_v2"]
  command = pretraining.command_line("mobilenet_v2", "fashion_mnist",
                                     preset.builder_kwargs, preset.recipe,
                                     preset.model)
  assert command.startswith("python -m benchmarks.pretrain --model=mobilenet_v2")
  assert "--width_multiplier=0.35" in command
  assert "--last_channels=256" in command
  assert f"--epochs={preset.recipe.epochs}" in command


def test_width_multiplier_rejected_for_fixed_architecture():
  with pytest.raises(ValueError, match="no width_multiplier"):
    pretraining._builder_kwargs("proxyless_mobile", 32, 1, 10, 0.5, None)


@pytest.mark.slow
def test_smoke_pretrain_is_deterministic(tmp_path):
  recipe = pretraining.Recipe(epochs=1, batch_size=64)
  runs = [pretraining.pretrain("tiny", resolution=16, channels=1,
                               recipe=recipe, progress=False,
                               max_train_samples=512) for _ in range(2)]
  (first, record), (second, _) = runs
  for a, b in zip(first.weights, second.weights):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  assert record["recipe"]["train_samples"] == 512
  assert record["slice"]["size"] == pretraining.SLICE_SIZE
  assert "--max_train_samples=512" in record["command"]
