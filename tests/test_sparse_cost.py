"""The sparse-update cost model: hand counts and the memory model's figures."""
import numpy as np
import pytest

from tflite_tl import memory
from tflite_tl import rewrite
from tflite_tl import sparse
import sparse_fixtures


def _cost_model(batch=2, axis="input", momentum=0.0, mask_bits=1):
  model = sparse_fixtures.mbconv_model()
  return model, sparse.CostModel(sparse.model_inventory(model), batch,
                                 momentum, axis, mask_bits)


def test_inventory_candidates_and_counts():
  model, cm = _cost_model()
  inv = cm.inventory
  assert inv.head == "logits"
  assert inv.candidates == ("stem", "b1_expand", "b1_dw", "b1_project",
                            "b2_expand", "b2_dw", "b2_project")
  dw = inv["b1_dw"]
  assert dw.macs == 6 * 6 * 12 * 9 and dw.params == 3 * 3 * 12
  assert inv["stem_relu"].grad_through_bytes == 12 * 12 * 6 / 8
  assert inv["b2_add"].grad_through_bytes == 0.0
  # b1_project's output reaches the Add both directly and through block 2.
  names = inv.names()
  downstream = {names[i] for i in range(len(names))
                if inv["b1_project"].downstream >> i & 1}
  assert {"b2_expand", "b2_add", "pool", "logits"} <= downstream
  assert "b1_dw" not in downstream


def test_head_only_and_one_layer_by_hand():
  _, cm = _cost_model(batch=2)
  head = cm({})
  assert head.stored_activation_bytes == 8 * 4 * 2  # the head's input
  assert head.param_bytes == (8 * 3 + 3) * 4
  assert head.mask_bytes == 0 and head.backward_macs == 8 * 3 * 2
  one = cm({"b2_dw": 4}, ["b2_dw"])
  # Kept: 4 of 16 input channels of b2_dw (6x6), batch 2.
  assert one.stored_activation_bytes - head.stored_activation_bytes == (
      6 * 6 * 4 * 4 * 2)
  assert one.param_bytes - head.param_bytes == (3 * 3 * 4 + 16) * 4
  # Masks of b2_dw_relu only (then project, add, pool: no masks).
  assert one.mask_bytes == 6 * 6 * 16 / 8 * 2
  bools = sparse.CostModel(cm.inventory, 2, mask_bits=8)({"b2_dw": 4},
                                                        ["b2_dw"])
  assert bools.mask_bytes == 6 * 6 * 16 * 2  # the lowering's 1-byte bools  # Input gradients of b2_project and the head, kernel gradient of b2_dw.
  assert one.backward_macs == 2 * (
      6 * 6 * 8 * 16 + 8 * 3 + 8 * 3 + 6 * 6 * 4 * 9)
  with_momentum = sparse.CostModel(cm.inventory, 2, 0.9)({"b2_dw": 4},
                                                         ["b2_dw"])
  assert with_momentum.optimizer_bytes == one.param_bytes
  assert with_momentum.total_bytes == pytest.approx(
      one.total_bytes + one.param_bytes)


def test_output_axis_keeps_the_whole_input():
  _, cm = _cost_model(axis="output")
  cost = cm({"b2_project": 2}, [])
  assert cm.channels("b2_project") == 8
  assert dict(sparse.cost.per_layer_dict(cost))["b2_project"][0] == (
      6 * 6 * 16 * 4 * 2)


@pytest.mark.parametrize("axis", ["input", "output"])
@pytest.mark.parametrize("chosen", [{"b1_dw": 3}, {"b2_expand": 2,
                                                    "b1_project": 5},
                                    {"stem": 1, "b2_project": 16}])
def test_stored_and_parameter_bytes_equal_the_memory_model(axis, chosen):
  model, cm = _cost_model(batch=3, axis=axis)
  chosen = {n: min(k, cm.channels(n)) for n, k in chosen.items()}
  rankings = {n: list(range(cm.channels(n))) for n in chosen}
  selection = sparse.build_selection(
      method="tinytrain", criterion="fisher", model_cost=cm, chosen=chosen,
      rankings=rankings, bias_layers=list(chosen), seed=0)
  rewritten = rewrite.apply_selection(model, selection)
  report = memory.training_memory(rewritten, batch_size=3)
  parts = dict(selection.saved_breakdown)
  assert parts["stored_activations"] + parts["masks"] == pytest.approx(
      report.saved_activation_bytes_per_sample * 3, abs=1)
  assert dict(selection.memory_breakdown)["trained_parameters"] == (
      report.trainable_param_bytes)


def test_activations_beyond_inference_come_from_the_peaks():
  _, cm = _cost_model(batch=2)
  head = cm({})
  # The head alone: its backward pass is far below inference's peak.
  assert head.activation_bytes == 0.0
  assert head.inference_peak_bytes == max(
      l.held_bytes for l in cm.inventory.layers) * 2
  # Training the stem keeps the masks of every ReLU and sends gradients
  # through the whole network: the backward peak exceeds inference's.
  deep = cm({"stem": 2}, ["stem"])
  assert deep.backward_peak_bytes > deep.inference_peak_bytes
  assert deep.activation_bytes == pytest.approx(
      deep.backward_peak_bytes - deep.inference_peak_bytes)
  shallow = cm({"b2_project": 2}, ["b2_project"])
  assert shallow.activation_bytes < deep.activation_bytes
  assert shallow.total_bytes == pytest.approx(
      shallow.activation_bytes + 2 * shallow.param_bytes)


def test_an_int8_forward_scales_activations_not_gradients():
  model = sparse_fixtures.mbconv_model()
  inventory = sparse.model_inventory(model)
  floats = sparse.CostModel(inventory, 2, 0.0, "input", 1)
  int8 = sparse.CostModel(inventory, 2, 0.0, "input", 1, forward_bytes=1)
  chosen, biases = {"b1_dw": 3}, ["b1_dw"]
  a, b = floats(chosen, biases), int8(chosen, biases)
  assert b.inference_peak_bytes == pytest.approx(a.inference_peak_bytes / 4)
  assert int8.stored_bytes("b1_dw", 3) == floats.stored_bytes("b1_dw", 3) / 4
  assert b.param_bytes == a.param_bytes
  # The float backward pass stands out above an int8 inference peak.
  assert b.activation_bytes >= a.activation_bytes
  with pytest.raises(ValueError, match="forward_bytes"):
    sparse.CostModel(inventory, 2, forward_bytes=2)


def test_select_passes_forward_bytes_to_the_budget():
  model = sparse_fixtures.mbconv_model()
  images, labels = sparse_fixtures.support(6)
  budget = 8000
  floats = sparse.select(model, images, labels, memory_budget=budget,
                         batch_size=2)
  int8 = sparse.select(model, images, labels, memory_budget=budget,
                       batch_size=2, forward_bytes=1)
  for s in (floats, int8):
    assert s.modelled_bytes <= budget
  # Against int8 activations the same bytes buy less float backward pass.
  assert int8.trained_channels < floats.trained_channels
