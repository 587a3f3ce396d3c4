"""The real per-run function on a tiny network (seconds per run)."""
import numpy as np
import pytest

from benchmarks.transfer_lib import plan, runner
from benchmarks.transfer_lib.store import ResultsStore
from tflite_tl import models


@pytest.fixture
def tiny_backbone(monkeypatch):
  """A freshly initialised tiny network stands in for the shipped backbone,
  so the test exercises the run's plumbing, not the pretrained weights."""
  def load(name, resolution=None):
    assert name == "tiny-test"
    return models.get_model("tiny", resolution=resolution or 16,
                            input_channels=1, num_classes=10)
  monkeypatch.setattr(models, "load_pretrained", load)


def _config(method="tinytl_b", seed=0, **kw):
  return plan.RunConfig(backbone="tiny-test", method=method, dataset="lfw",
                        seed=seed, shots=5, epochs=1, batch_size=4, **kw)


def test_run_records_every_measurement(tiny_backbone):
  del tiny_backbone
  result = runner.TransferRunner(measure_arena=False)(_config())
  assert 0.0 <= result["accuracy"] <= 1.0
  assert result["num_train"] == 10 and result["num_classes"] == 2
  assert result["num_test"] > 0 and result["resolution_px"] == 16
  assert result["training_memory_bytes"] > 0
  assert 0 < result["trainable_params"]
  assert result["arena_bytes"] is None and result["wall_time_s"] > 0


def test_same_seed_same_accuracy_and_full_trains_more(tiny_backbone):
  del tiny_backbone
  run = runner.TransferRunner(measure_arena=False)
  a, b = run(_config(seed=3)), run(_config(seed=3))
  assert a["accuracy"] == b["accuracy"]
  full = run(_config(method="ft_full"))
  last = run(_config(method="ft_last"))
  assert full["trainable_params"] > a["trainable_params"] > last[
      "trainable_params"]
  assert full["training_memory_bytes"] > last["training_memory_bytes"]


def test_backbone_at_other_resolution(tiny_backbone):
  del tiny_backbone
  assert runner.backbone_at("tiny-test", None).input_shape[1:3] == (16, 16)
  assert runner.backbone_at("tiny-test", 24).input_shape[1:3] == (24, 24)


def test_arena_is_measured_once_per_graph_and_cached(tiny_backbone, tmp_path,
                                                     monkeypatch):
  del tiny_backbone
  from tflite_tl import lower, tflm
  calls = []
  real_lower = lower.lower_model

  def counting_lower(model, **kw):
    calls.append(model.name)
    return real_lower(model, **kw)

  monkeypatch.setattr(lower, "lower_model", counting_lower)
  path = str(tmp_path / "r.jsonl")
  run = runner.TransferRunner.for_results(path)
  first = run(_config(seed=0))
  assert first["arena_bytes"] and first["arena_error"] is None, first
  assert run(_config(seed=1))["arena_bytes"] == first["arena_bytes"]
  assert len(calls) == 1
  # A new process (a restarted sweep) reads the cache instead of lowering.
  again = runner.TransferRunner.for_results(path)(_config(seed=2))
  assert again["arena_bytes"] == first["arena_bytes"] and len(calls) == 1
  assert len(ResultsStore(str(tmp_path / "r.arena.jsonl"))) == 1
  del tflm


def test_arena_key_names_the_lowering_only_when_it_is_not_the_default():
  default = runner.TransferRunner.arena_key(_config(), 16, 2)
  assert default == dict(backbone="tiny-test", method="tinytl_b",
                         resolution=16, batch_size=4, num_classes=2)
  int8 = runner.TransferRunner.arena_key(
      _config(kernels="tl", precision="int8", qas=False, optimizer="sgd"),
      16, 2)
  assert int8 == dict(default, kernels="tl", precision="int8", qas=False)


@pytest.mark.slow  # about 40 s on an idle core: the int8 step is traced
def test_int8_run_trains_with_the_device_step(tiny_backbone, monkeypatch):
  del tiny_backbone
  from tflite_tl.lower.tl import host_training
  from tflite_tl import train
  calls = []
  real_fit = host_training.fit_int8

  def counting_fit(model, x, y, **kw):
    calls.append(kw)
    return real_fit(model, x, y, **kw)

  monkeypatch.setattr(host_training, "fit_int8", counting_fit)
  monkeypatch.setattr(train, "fit", lambda *a, **k: pytest.fail("float fit"))
  config = _config(method="tinytl_b", kernels="tl", precision="int8",
                   qas=False, optimizer="sgd", learning_rate=0.03)
  result = runner.TransferRunner(measure_arena=False)(config)
  assert 0.0 <= result["accuracy"] <= 1.0
  assert result["host_training"].startswith("int8 device step")
  assert len(calls) == 1 and calls[0]["policy"].qas is False
  assert calls[0]["learning_rate"] == 0.03 and calls[0]["batch_size"] == 4
