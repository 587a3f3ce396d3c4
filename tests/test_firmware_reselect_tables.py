"""The re-selection tables point at the right fisher outputs, variables and
full-kernel constants of the lowered models."""
import numpy as np
import pytest

from tflite_tl import flatbuffer
from tflite_tl import lower
from tflite_tl import rewrite
from tflite_tl import sparse
from tflite_tl.firmware import reselect_tables
from tflite_tl.lower import fisher_graph
import sparse_fixtures

CHOSEN = {"b1_dw": 5, "b2_expand": 3, "b2_project": 6}
# Every candidate the selection pass scores, sparse or not.
AXES = {"b1_expand": "input", "b1_dw": "channels", "b2_expand": "input",
        "b2_dw": "channels", "b2_project": "input"}


@pytest.fixture(scope="module")
def case():
  model = sparse_fixtures.mbconv_model()
  cm = sparse.CostModel(sparse.model_inventory(model), 2, 0.0, "input")
  selection = sparse.build_selection(
      method="tinytrain", criterion="fisher", model_cost=cm, chosen=CHOSEN,
      rankings={n: list(range(cm.channels(n))) for n in CHOSEN},
      bias_layers=list(CHOSEN), seed=0)
  model = rewrite.apply_selection(model, selection)
  lowered = lower.lower_model(model, batch_size=2, learning_rate=0.05,
                              momentum=0.9, variable_channels=True)
  fisher = fisher_graph.lower_fisher(model, AXES, batch_size=2)
  variables = flatbuffer.model_info(lowered.train_tflite).variables
  tables = reselect_tables.reselect_tables(
      lowered.train_tflite, variables, fisher.tflite, fisher.layers, 1000,
      reselect_tables.full_kernels(model))
  return model, lowered, fisher, variables, tables


def test_one_entry_per_sparse_layer_in_fisher_order(case):
  model, _, fisher, variables, tables = case
  assert [l.layer for l in tables.layers] == [
      n for n in fisher.layers if n in CHOSEN]
  for entry in tables.layers:
    layer = model.get_layer(entry.layer)
    assert fisher.layers[entry.fisher_output] == entry.layer
    assert entry.chosen == CHOSEN[entry.layer]
    assert entry.kernel_shape == tuple(layer.kernel.shape)
    assert entry.channels == layer.kernel.shape[entry.axis]
    names = [variables[i].shared_name for i in (
        entry.channels_var, entry.slots_var, entry.trained_var,
        entry.momentum_var)]
    assert names == [f"{entry.layer}/channels", f"{entry.layer}/channel_slots",
                     f"{entry.layer}/kernel_trained",
                     f"{entry.layer}/kernel_trained/momentum"]
  assert tables.accumulators == sum(l.channels for l in tables.layers)
  assert tables.chosen == sum(CHOSEN.values())


def test_the_full_kernel_tensor_holds_the_layers_kernel(case):
  model, lowered, _, _, tables = case
  sg = flatbuffer.reader.root(lowered.train_tflite).Subgraphs(0)
  concat_inputs = {t for ins in flatbuffer.reader.op_inputs(
      lowered.train_tflite, "CONCATENATION") for t in ins}
  for entry in tables.layers:
    assert entry.full_kernel_tensor in concat_inputs
    t = sg.Tensors(entry.full_kernel_tensor)
    buffer = flatbuffer.reader.root(lowered.train_tflite).Buffers(t.Buffer())
    data = buffer.DataAsNumpy().view(np.float32).reshape(entry.kernel_shape)
    np.testing.assert_array_equal(
        data, model.get_layer(entry.layer).kernel.numpy())


def test_the_config_declares_the_tables(case):
  *_, tables = case
  header = reselect_tables.config_header(tables, 4096)
  assert "#define TLTL_RESELECT 1" in header
  assert "kReselectArenaBytes = 4096" in header
  assert f"kReselectChosen = {tables.chosen}" in header
  source = reselect_tables.config_source(tables)
  assert source.count('{"') == len(tables.layers)
  off = reselect_tables.config_header(None, 0, "kernel flavor")
  assert "#define TLTL_RESELECT 0" in off and '"kernel flavor"' in off


def test_the_int8_builtin_step_keeps_sparse_kernels_float(case):
  # Only frozen kernels are stored int8; a channel-sparse layer's full
  # kernel stays the float32 constant its slices are copied from.
  model, *_ = case
  int8 = lower.lower_model(model, batch_size=2, learning_rate=0.05,
                           precision="int8", variable_channels=True)
  for _, kernel in reselect_tables.full_kernels(model).values():
    assert reselect_tables.full_kernel_tensor(int8.train_tflite, kernel) >= 0


def test_a_model_without_the_kernel_is_refused(case):
  _, lowered, *_ = case
  with pytest.raises(ValueError, match="no float32 constant"):
    reselect_tables.full_kernel_tensor(lowered.train_tflite,
                                       np.full((1, 1, 3, 2), 7.0))
