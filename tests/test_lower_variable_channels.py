"""Channel-sparse layers whose chosen channels are variables: a board can
re-choose them in the lowered train step, shapes and arena unchanged, and
the step still matches TF."""
import numpy as np
import pytest

from tflite_tl import lower
from tflite_tl import rewrite
from tflite_tl import sparse
from tflite_tl import tflm
from tflite_tl.flatbuffer import reader
from tflite_tl.verify import train_step as verify
import sparse_fixtures

CHOSEN = {"b1_dw": 5, "b2_expand": 3, "b2_project": 16}


def _rewritten(chosen, axis="input"):
  model = sparse_fixtures.mbconv_model()
  cm = sparse.CostModel(sparse.model_inventory(model), 2, 0.0, axis)
  selection = sparse.build_selection(
      method="tinytrain", criterion="fisher", model_cost=cm, chosen=chosen,
      rankings={n: list(range(cm.channels(n))) for n in chosen},
      bias_layers=list(chosen), seed=0)
  return rewrite.apply_selection(model, selection)


def _batches(lowered, steps=4):
  return verify.random_batches(0, steps, 2, lowered.module.image_shape, 3)


@pytest.fixture(scope="module")
def lowered():
  return lower.lower_model(_rewritten(CHOSEN), batch_size=2,
                           learning_rate=0.05, variable_channels=True)


def test_the_choice_is_int32_variables_of_both_models(lowered):
  names = set(reader.variable_names(lowered.train_tflite))
  for layer, k in CHOSEN.items():
    assert {f"{layer}/channels", f"{layer}/channel_slots"} <= names
  values = lower.read_params(lowered.train_tflite)
  assert values["b1_dw/channels"].dtype == np.int32
  np.testing.assert_array_equal(values["b1_dw/channels"], np.arange(5))
  assert set(reader.variable_names(lowered.predict_tflite)) >= {
      "b1_dw/channels", "b1_dw/channel_slots"}


def test_matches_the_constant_choice_exactly(lowered):
  constant = lower.lower_model(_rewritten(CHOSEN), batch_size=2,
                               learning_rate=0.05)
  batches = _batches(lowered)
  a = tflm.run_train_steps(lowered.train_tflite, batches)
  b = tflm.run_train_steps(constant.train_tflite, batches)
  np.testing.assert_array_equal(a.losses, b.losses)


def test_a_new_choice_written_into_the_graph_trains_like_tf(lowered):
  module = lowered.module
  before = tflm.measure_arena(lowered.train_tflite)
  new = {}
  new.update(module.choose_channels("b1_dw", [1, 4, 6, 9, 11]))
  new.update(module.choose_channels("b2_expand", [0, 5, 7]))
  rechosen = lower.write_params(lowered.train_tflite, new)
  after = tflm.measure_arena(rechosen)
  # Same planned activations; the tail may grow by a tensor struct where a
  # new initial value stops sharing a constant with another variable's (a
  # board writing the variables at run time changes nothing).
  assert after.head == before.head
  assert 0 <= after.total - before.total <= 64
  moved = type(lowered)(rechosen, lowered.predict_tflite,
                        lowered.param_specs, module)
  result = verify.compare(moved, _batches(lowered), arena=False)
  assert result["parity"] == "exact", result
  # The new choice is in effect: the TF reference trains other slices.
  trained = module.param_values()["b1_dw/kernel_trained"]
  full = _rewritten(CHOSEN).get_layer("b1_dw").kernel.numpy()
  np.testing.assert_array_equal(
      lower.read_params(rechosen)["b1_dw/kernel_trained"],
      full[:, :, [1, 4, 6, 9, 11], :])
  assert not np.array_equal(trained, full[:, :, [1, 4, 6, 9, 11], :])


@pytest.mark.parametrize("channels, message", [
    ([0, 1], "trains 5 distinct channels"),
    ([0, 0, 1, 2, 3], "distinct"),
    ([0, 1, 2, 3, 99], "distinct channels of 12"),
])
def test_bad_choices_are_named(lowered, channels, message):
  with pytest.raises(ValueError, match=message):
    lowered.module.choose_channels("b1_dw", channels)


def test_needs_the_builtin_flavor_and_a_sparse_layer():
  with pytest.raises(ValueError, match="kernels='builtin'"):
    lower.lower_model(_rewritten(CHOSEN), batch_size=2, learning_rate=0.05,
                      kernels="tl", variable_channels=True)
  dense = rewrite.apply_method(sparse_fixtures.mbconv_model(), "tinytl_b")
  with pytest.raises(ValueError, match="no channel-sparse layer"):
    lower.lower_model(dense, batch_size=2, learning_rate=0.05,
                      variable_channels=True)
