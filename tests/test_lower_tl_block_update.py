"""TL_INVERTED_RESIDUAL_UPDATE in the int8 kernel flavor: an inverted-residual
block whose depthwise trains (TinyTrain's chosen channels) between a frozen
expand and a project conv, frozen or training chosen channels too, lowers
its backward to one op: with an earlier layer training, with the input
gradient through the expand; as the earliest trained layer (the backward
stops at its depthwise), without one. In TFLM the train step equals the
unfused one bit for bit and TF's exactly, and the expanded-width gradient
maps are gone."""
import numpy as np
import pytest

import sparse_fixtures
from tflite_tl import rewrite
from tflite_tl import sparse
from tflite_tl.flatbuffer import lifetimes
from tflite_tl.flatbuffer import reader
from tflite_tl.lower import lower_model
from tflite_tl.lower.tl import block_update
from tflite_tl.tflm import measure_arena
from tflite_tl.tflm import runner
from tflite_tl.verify import train_step as ts

_BATCH, _STEPS = 2, 4
_OP = block_update.OP
# b2 (stride 1, residual Add) fuses: b1_dw trains below it. b1 (stride 2)
# fuses without an input gradient: the backward stops at b1_dw.
_B2 = {"b1_dw": 5, "b2_dw": 6}
# Both fuse: the stem trains; b2_dw trains every channel.
_BOTH = {"stem": 2, "b1_dw": 4, "b2_dw": 16}
# b2 fuses with its project's chosen (input) channels and bias training too.
_PROJECT = {"b1_dw": 5, "b2_dw": 6, "b2_project": 4}


def _rewritten(chosen, axis):
  model = sparse_fixtures.mbconv_model()
  cm = sparse.CostModel(sparse.model_inventory(model), _BATCH, 0.0, axis)
  selection = sparse.build_selection(
      method="tinytrain", criterion="fisher", model_cost=cm, chosen=chosen,
      rankings={n: list(range(cm.channels(n)))[::-1] for n in chosen},
      bias_layers=list(chosen), seed=0)
  return rewrite.apply_selection(model, selection)


def _lowered(chosen, batches, axis="input"):
  """``axis``: the channels a conv's selection chooses (a depthwise's are
  always its channels)."""
  return lower_model(_rewritten(chosen, axis), batch_size=_BATCH,
                     learning_rate=0.05, kernels="tl", precision="int8",
                     calibration_images=np.concatenate(
                         [x for x, _ in batches]))


def _unfused(monkeypatch, chosen, batches, axis="input"):
  with monkeypatch.context() as m:
    m.setattr(block_update, "FUSED", False)
    return _lowered(chosen, batches, axis)


def _ops(tflite: bytes):
  return {k.replace("CUSTOM:", ""): v
          for k, v in reader.op_counts(tflite, subgraph=0).items()}


def _tensor_names(tflite: bytes):
  """The planned (arena) tensors."""
  return {t.name for t in lifetimes.tensor_lifetimes(tflite)[0]}


def _input_names(tflite: bytes, op: str):
  """The input tensor names of each ``op`` (None: absent)."""
  sg = reader.root(tflite).Subgraphs(0)
  return [[sg.Tensors(i).Name().decode() if i >= 0 else None for i in ins]
          for ins in reader.op_inputs(tflite, op)]


@pytest.fixture(scope="module")
def batches():
  return ts.random_batches(0, _STEPS, _BATCH, (12, 12, 2), 3)


@pytest.mark.parametrize("chosen,crossed,stopping", [
    (_B2, ["b2"], ["b1"]), (_BOTH, ["b1", "b2"], []), ({"b2_dw": 6}, [], ["b2"])])
def test_the_block_backward_is_one_op(monkeypatch, batches, chosen, crossed,
                                      stopping):
  fused = _lowered(chosen, batches).train_tflite
  unfused = _unfused(monkeypatch, chosen, batches).train_tflite
  ops, before = _ops(fused), _ops(unfused)
  n = len(crossed) + len(stopping)
  assert _OP not in before and ops[_OP] == n
  # Each replaces a depthwise update and the project's input gradient, and
  # a crossed block the expand's too.
  assert before["TL_DEPTHWISE_UPDATE"] - ops.get("TL_DEPTHWISE_UPDATE", 0) == n
  assert (before["TL_CONV_INPUT_GRAD"] - ops.get("TL_CONV_INPUT_GRAD", 0)
          == 2 * len(crossed) + len(stopping))
  names, names_before = _tensor_names(fused), _tensor_names(unfused)
  for b in crossed + stopping:
    # The project's expanded-width input gradient is no tensor any more.
    t = f"{b}_project/grad_input"
    assert t in names_before and t not in names, t
  for b in crossed:
    # Nor the depthwise's; the expand's input gradient is the op's output.
    t = f"{b}_dw/grad_input"
    assert t in names_before and t not in names, t
    assert f"{b}_expand/grad_input" in names
  for b in stopping:
    assert f"{b}_expand/grad_input" not in names


def _op_of(tflite: bytes, depthwise: str):
  """The input names of the TL_INVERTED_RESIDUAL_UPDATE of ``depthwise``."""
  (names,) = [n for n in _input_names(tflite, f"CUSTOM:{_OP}")
              if n[3] == f"{depthwise}/kernel_trained:int8"]
  return names


def test_the_op_reads_the_blocks_filters_masks_and_parameters(batches):
  tflite = _lowered(_B2, batches).train_tflite
  names = _op_of(tflite, "b2_dw")
  assert names[1:] == [
      None, "b2_project/kernel", "b2_dw/kernel_trained:int8",
      "b2_dw_relu/mask", "b2_expand/kernel", "b2_expand/mask",
      "b2_dw/saved_input", "b2_dw/trained_channels", "b2_dw/kernel_trained",
      # No int32 copy of the bias: the forward's TL_DEPTHWISE_CONV quantizes
      # the float master per invoke.
      "b2_dw/bias", None, None, None, None, None, None], names


def test_the_backward_stopping_at_the_depthwise_fuses_without_expand(batches):
  tflite = _lowered(_B2, batches).train_tflite
  names = _op_of(tflite, "b1_dw")
  # No expand stage (filter, mask) and no output: only the updates run.
  assert names[1:] == [
      None, "b1_project/kernel", "b1_dw/kernel_trained:int8",
      "b1_dw_relu/mask", None, None, "b1_dw/saved_input",
      "b1_dw/trained_channels", "b1_dw/kernel_trained", "b1_dw/bias",
      None, None, None, None, None, None], names
  outputs = [o for o in reader.op_outputs(tflite, f"CUSTOM:{_OP}")
             if len(o) == 0]
  assert len(outputs) == 1


def test_a_trained_project_fuses_with_its_update(monkeypatch, batches):
  fused = _lowered(_PROJECT, batches).train_tflite
  unfused = _unfused(monkeypatch, _PROJECT, batches).train_tflite
  ops, before = _ops(fused), _ops(unfused)
  # b2's op and b1's (stopping at its depthwise, frozen project).
  assert _OP not in before and ops[_OP] == 2
  # b2's replaces the project's TL_CONV_UPDATE, the depthwise update and the
  # expand's input gradient; b1's its depthwise update and its project's
  # input gradient.
  for op, n in (("TL_CONV_UPDATE", 1), ("TL_DEPTHWISE_UPDATE", 2),
                ("TL_CONV_INPUT_GRAD", 2)):
    assert before[op] - ops.get(op, 0) == n, op
  names = _op_of(fused, "b2_dw")
  # The project's int8 filter is its trained variable copy; its TL_CONV_UPDATE
  # inputs follow the depthwise's (the chosen input channels' saved input).
  assert names[2] == "b2_project/kernel_trained:int8", names
  assert names[12:] == [
      "b2_project/saved_input", "b2_project/trained_channels",
      "b2_project/kernel_trained", "b2_project/bias", None], names
  names, names_before = _tensor_names(fused), _tensor_names(unfused)
  for t in ("b2_project/grad_input", "b2_dw/grad_input"):
    assert t in names_before and t not in names, t


def test_a_project_training_output_channels_reads_the_depthwise_output(
    batches):
  tflite = _lowered(_PROJECT, batches, "output").train_tflite
  names = _op_of(tflite, "b2_dw")
  # Its saved input is the whole project input (TL_CONV_UPDATE's axis 0).
  assert names[12:] == [
      "b2_dw_relu", "b2_project/trained_channels", "b2_project/kernel_trained",
      "b2_project/bias", None], names


@pytest.mark.parametrize("chosen,axis", [(_B2, "input"), (_BOTH, "input"),
                                         ({"b2_dw": 6}, "input"),
                                         (_PROJECT, "input"),
                                         (_PROJECT, "output")])
def test_fused_step_is_the_unfused_one_bit_for_bit_with_a_smaller_peak(
    native_runner, monkeypatch, batches, chosen, axis):
  del native_runner
  lowered = _lowered(chosen, batches, axis)
  unfused = _unfused(monkeypatch, chosen, batches, axis)
  got = runner.run_train_steps(lowered.train_tflite, batches)
  want = runner.run_train_steps(unfused.train_tflite, batches)
  np.testing.assert_array_equal(got.losses, want.losses)
  assert got.params.keys() == want.params.keys()
  for name, value in got.params.items():
    assert value.tobytes() == want.params[name].tobytes(), name
  # And both are TF's train step.
  result = ts.compare(lowered, batches, perturbed_references=1)
  assert result["parity"] == "exact", result
  peak = lifetimes.live_profile(lowered.train_tflite).peak_bytes
  peak_before = lifetimes.live_profile(unfused.train_tflite).peak_bytes
  before = measure_arena(unfused.train_tflite)
  after = measure_arena(lowered.train_tflite)
  print(f"{sorted(chosen)}: planned peak {peak_before} -> {peak} B; TFLM "
        f"arena {before.total} (head {before.head}) -> {after.total} (head "
        f"{after.head})")
  assert peak < peak_before
  assert after.head < before.head
