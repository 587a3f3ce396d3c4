"""The device-in-the-loop check replays the app's training in TFLM."""
import numpy as np
import pytest

import tflite_fixtures as fx
from tflite_tl.verify import on_device


def test_bytes_round_trip_like_the_board():
  x = np.array([0.0, 0.5, 1.0, 1.2, -0.1], np.float32)
  raw = on_device.to_device_bytes(x)
  assert raw.tolist() == [0, 128, 255, 255, 0]
  assert on_device.from_device_bytes(raw).dtype == np.float32
  assert on_device.from_device_bytes(raw)[2] == np.float32(255) * np.float32(
      1.0 / 255.0)


def test_batches_follow_the_apps_rotating_walk():
  raw = np.arange(5, dtype=np.uint8).reshape(5, 1, 1, 1)
  labels = np.arange(5)
  steps = on_device.app_batches(raw, labels, batch=2, epochs=2)
  # tl_app.cc: sample (first + b + e) % n, first = 0, 2, 4; 3 steps/epoch.
  assert [s[1].tolist() for s in steps] == [
      [0, 1], [2, 3], [4, 0], [1, 2], [3, 4], [0, 1]]
  assert steps[0][1].dtype == np.int32
  with pytest.raises(ValueError, match="at least 8 samples"):
    on_device.app_batches(raw, labels, batch=8, epochs=1)


def test_balanced_pick_takes_each_class_in_turn_and_skips_excluded():
  labels = np.array([0, 0, 0, 1, 1, 2, 2, 2])
  picked = on_device.balanced_pick(labels, 5, exclude=[0])
  assert picked.tolist() == [1, 3, 5, 2, 4]
  assert len(on_device.balanced_pick(labels, 100)) == len(labels)


def test_training_in_tflm_lowers_the_buffers_loss():
  module = fx.TinyStep()
  train = fx.convert(module, module.train_step)
  predict = fx.convert(module, module.predict)
  rs = np.random.RandomState(0)
  x = rs.rand(6, *fx.IMAGE).astype(np.float32)
  y = np.arange(6) % fx.CLASSES
  result = on_device.device_training(train, predict, (x, y), (x, y),
                                     batch=fx.BATCH, epochs=4)
  assert (result.samples, result.steps, result.epochs) == (6, 12, 4)
  assert result.epoch_losses[-1] < result.epoch_losses[0]
  assert result.classes_in_buffer == fx.CLASSES
  assert result.to_dict()["source"].startswith("device train step")


def test_split_keeps_buffer_and_held_out_apart_and_is_seeded():
  labels = np.repeat(np.arange(4), 10)
  buffer, held = on_device.split_test_images(labels, 0, 8, 20)
  assert len(buffer) == 8 and len(held) == 20
  assert not set(buffer) & set(held)
  assert sorted(np.bincount(labels[buffer]).tolist()) == [2, 2, 2, 2]
  again = on_device.split_test_images(labels, 0, 8, 20)
  assert all((a == b).all() for a, b in zip((buffer, held), again))
  buffer, held = on_device.split_test_images(labels, 0, 100, 100)
  assert len(buffer) == 20 and len(held) == 20  # half the split at most
  buffer, _ = on_device.split_test_images(labels, 0, 0, 5)
  assert len(buffer) == 0
