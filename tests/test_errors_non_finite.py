"""Catalogue of bad input, non-finite loss (docs/errors.md#non-finite-loss):
what would make on-device training NaN is refused before TFLM (NaN pixels,
labels out of range), and a train step whose loss or update becomes
non-finite inside the graph is skipped and reported: the parameters stay
finite. Both flavors' steps skip by themselves, as on the board: the builtin
flavor in the TFLM interpreter, the kernel flavor in TFLM built from
source."""
import logging

import numpy as np
import pytest

from error_fixtures import train_step
import tflite_tl as tl
from tflite_tl import tflm
from tflite_tl.flatbuffer import reader
from tflite_tl.lower import lower_model
from tflite_tl.tflm import train_inputs
from tflite_tl.verify import train_step as ts

X = np.random.RandomState(0).rand(2, 8, 8, 1).astype(np.float32)
Y = np.array([0, 1])


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_pixel_is_refused_before_tflm(value):
  bad = X.copy()
  bad[1, 2, 3, 0] = value
  with pytest.raises(ValueError, match=r"run_train_steps: batch 1: image 1 "
                     r"has a non-finite pixel \(-?(nan|inf) at \[2, 3, 0\]\); "
                     "a NaN or inf input makes the loss and every updated "
                     "parameter NaN. Replace or drop the image"):
    tflm.run_train_steps(train_step(), [(X, Y), (bad, Y)])


@pytest.mark.parametrize("labels, label", [([0, 3], 3), ([-1, 0], -1)])
def test_label_out_of_range_is_refused_before_tflm(labels, label):
  with pytest.raises(ValueError, match=f"run_train_steps: batch 0: label "
                     f"{label} is out of range; this train step has 3 "
                     r"classes, so labels must be in \[0, 2\]"):
    tflm.run_train_steps(train_step(), [(X, np.array(labels))])


def test_fractional_labels_and_no_batches():
  with pytest.raises(ValueError, match=r"labels \[0.5, 1.0\] are not integer "
                     "class indices"):
    tflm.run_train_steps(train_step(), [(X, np.array([0.5, 1.0]))])
  with pytest.raises(ValueError, match="needs at least one"):
    tflm.run_train_steps(train_step(), [])


def test_loss_that_becomes_nan_in_the_graph_skips_the_update(caplog):
  # ft_full at an absurd rate: the first update is finite but so large that
  # the next forward pass overflows, and the loss turns NaN in TFLM.
  step = train_step("ft_full", learning_rate=1e30)
  raw = tflm.run_train_steps(step, [(X, Y)] * 3, skip_non_finite=False)
  assert np.isnan(raw.losses[1])
  with caplog.at_level(logging.WARNING):
    run = tflm.run_train_steps(step, [(X, Y)] * 3)
  assert run.skipped_steps == (1, 2)
  assert np.isfinite(run.losses[0]) and np.isnan(run.losses[1:]).all()
  assert all(np.isfinite(v).all() for v in run.params.values())
  messages = [r.getMessage() for r in caplog.records]
  assert ("train step 1: the loss is not finite (loss nan); its update was "
          "skipped, the parameters stay finite. Lower the learning rate."
          in messages)


def test_builtin_step_skips_a_nan_loss_by_itself():
  # What the board runs: no host replays anything. A step whose loss is NaN
  # leaves every parameter (and momentum slot) bit for bit as it was.
  for momentum in (0.0, 0.9):
    step = train_step("ft_full", learning_rate=1e30, momentum=momentum)
    assert reader.updates_are_guarded(step)
    first = tflm.run_train_steps(step, [(X, Y)], skip_non_finite=False)
    raw = tflm.run_train_steps(step, [(X, Y)] * 3, skip_non_finite=False)
    assert np.isnan(raw.losses[1:]).all()
    assert first.params.keys() == raw.params.keys()
    for name, value in first.params.items():
      assert np.isfinite(value).all(), name
      np.testing.assert_array_equal(raw.params[name].view(np.uint32),
                                    value.view(np.uint32), err_msg=name)


def test_only_a_train_step_counts_as_guarded():
  lowered = lower_model(
      tl.apply_method(tl.load_pretrained("tiny", resolution=16), "tinytl_b",
                      num_classes=3), batch_size=1, learning_rate=0.01)
  assert reader.updates_are_guarded(lowered.train_tflite)
  # The predict graph re-assigns each variable to itself, unguarded.
  assert not reader.updates_are_guarded(lowered.predict_tflite)


def test_update_that_overflows_is_skipped():
  # With momentum the velocity grows past float32's range within the run.
  step = train_step("ft_full", learning_rate=3e38, momentum=0.9)
  run = tflm.run_train_steps(step, [(X, Y)] * 2)
  assert run.skipped_steps
  assert all(np.isfinite(v).all() for v in run.params.values())


def test_finite_run_is_unchanged():
  step = train_step()
  run = tflm.run_train_steps(step, [(X, Y)] * 2)
  plain = tflm.run_train_steps(step, [(X, Y)] * 2, skip_non_finite=False)
  assert run.skipped_steps == ()
  np.testing.assert_array_equal(run.losses, plain.losses)
  for name, value in plain.params.items():
    np.testing.assert_array_equal(run.params[name], value)


@pytest.fixture(scope="module")
def tl_tinytl_b():
  """tinytl_b on the tiny backbone, kernel flavor, float (batch 2)."""
  batches = ts.random_batches(0, 4, 2, (32, 32, 1), 10)
  model = tl.apply_method(tl.load_pretrained("tiny"), "tinytl_b",
                          num_classes=10)
  return lower_model(model, batch_size=2, learning_rate=0.01, kernels="tl",
                     precision="float").train_tflite, batches


def test_kernel_flavor_step_skips_a_nan_loss_by_itself(
    native_runner, tl_tinytl_b, monkeypatch, caplog):
  # A NaN pixel let through (the API refuses it: N1) makes step 1's loss
  # NaN in TFLM; TL_SOFTMAX_XENT's zero gradient makes its update no step.
  del native_runner
  step, batches = tl_tinytl_b
  batches = [(x.copy(), y) for x, y in batches]
  batches[1][0][0, 3, 4, 0] = np.nan
  monkeypatch.setattr(train_inputs, "check_batch", lambda *args: None)
  before = tflm.run_train_steps(step, batches[:1]).params
  after = tflm.run_train_steps(step, batches[:2], skip_non_finite=False)
  assert np.isnan(after.losses[1])
  for name, value in before.items():  # bit for bit
    np.testing.assert_array_equal(after.params[name].view(np.uint32),
                                  value.view(np.uint32), err_msg=name)
  with caplog.at_level(logging.WARNING):
    run = tflm.run_train_steps(step, batches)
  assert run.skipped_steps == (1,)
  assert np.isfinite(run.losses[[0, 2, 3]]).all()
  assert all(np.isfinite(v).all() for v in run.params.values())
  assert any(not np.array_equal(run.params[n], v) for n, v in before.items())
  assert ("train step 1: the loss is not finite (loss nan); its update was "
          "skipped, the parameters stay finite. Lower the learning rate."
          in [r.getMessage() for r in caplog.records])
