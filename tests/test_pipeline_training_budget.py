"""The training-state budget a board leaves, from the fit check."""
import pytest

from tflite_tl import devices
from tflite_tl import models
from tflite_tl.firmware import fit
from tflite_tl.pipeline import training_budget


def test_budget_is_ram_after_margin_minus_consumers():
  nano = devices.get_device("nano33ble")
  consumers = {"arena": 100_000, "sample buffer": 16_400}
  budget = training_budget.memory_budget_for_device(nano, consumers)
  capacity = nano.arena_capacity()
  margin = int(round(capacity * fit.DEFAULT_SRAM_MARGIN))
  assert budget.budget_bytes == capacity - margin - 116_400
  assert budget.ram_margin_bytes == margin
  assert dict(budget.consumers) == consumers
  assert "nano33ble" in budget.explain() and budget.to_dict()["budget_bytes"]
  bigger = training_budget.memory_budget_for_device(
      devices.get_device("esp32s3"), consumers)
  assert bigger.budget_bytes > budget.budget_bytes


def test_consumers_that_fill_the_board_leave_no_budget():
  nano = devices.get_device("nano33ble")
  with pytest.raises(fit.DoesNotFitError, match="Nothing is left"):
    training_budget.memory_budget_for_device(nano, {"arena": 400_000})


def test_measured_inference_consumers_of_the_tiny_backbone():
  consumers = training_budget.inference_consumers(
      models.load_pretrained("tiny"), num_classes=10, batch_size=2,
      max_samples=16)
  arena = consumers[
      "arena of the FT-Last step and the predict model (shared head)"]
  assert 40_000 < arena < 200_000
  assert consumers["sample buffer"] == 16 * (32 * 32 + 1)
  assert consumers["variable scratch"] == 16 * 10 * 4
  budget = training_budget.memory_budget_for_device(
      devices.get_device("nano33ble"), consumers)
  assert budget.budget_bytes > 0


def test_samples_in_flash_leave_one_batch_in_ram():
  consumers = {"arena": 100_000, "sample buffer": 16 * (9216 + 1)}
  moved = training_budget.with_samples_in_flash(consumers, 9216, 2, 16)
  assert "sample buffer" not in moved and moved["arena"] == 100_000
  # Two 96 px images and a 2-byte index per record (17) plus the store.
  assert moved["sample buffer (one batch; samples in flash)"] == (
      2 * 9216 + 2 * 17 + 48)
