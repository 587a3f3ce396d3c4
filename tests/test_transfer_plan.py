import os
import subprocess
import sys

import pytest

from benchmarks.transfer_lib import plan
from benchmarks.transfer_lib.store import ResultsStore

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_run_id_is_stable_across_processes():
  config = plan.RunConfig(backbone="b", method="tinytl_lb", dataset="lfw",
                          seed=1, shots=10)
  code = ("from benchmarks.transfer_lib import plan; print(plan.RunConfig("
          "backbone='b', method='tinytl_lb', dataset='lfw', seed=1, "
          "shots=10).run_id)")
  out = subprocess.run([sys.executable, "-c", code], check=True,
                       capture_output=True, text=True).stdout.strip()
  assert out == config.run_id
  assert len(config.run_id) == 16


def test_run_id_changes_with_every_field():
  base = plan.RunConfig(backbone="b", method="ft_full", dataset="lfw", seed=0)
  variants = [
      dict(backbone="c"), dict(method="ft_last"), dict(dataset="digits"),
      dict(seed=1), dict(shots=5), dict(resolution=24), dict(batch_size=1),
      dict(epochs=3), dict(learning_rate=0.1), dict(optimizer="sgd")]
  ids = {base.run_id}
  for change in variants:
    ids.add(plan.RunConfig(**dict(base.to_dict(), **change)).run_id)
  assert len(ids) == len(variants) + 1


def test_config_round_trips_and_rejects_unknown_fields():
  config = plan.RunConfig(backbone="b", method="ft_full", dataset="lfw", seed=2)
  assert plan.RunConfig.from_dict(config.to_dict()) == config
  with pytest.raises(ValueError, match="Unknown run configuration fields"):
    plan.RunConfig.from_dict(dict(config.to_dict(), colour="red"))


@pytest.mark.parametrize("bad", [dict(shots=0), dict(batch_size=0),
                                 dict(epochs=0), dict(resolution=4)])
def test_invalid_config_is_rejected(bad):
  with pytest.raises(ValueError):
    plan.RunConfig(**dict(backbone="b", method="m", dataset="d", seed=0, **bad))


def test_grid_order_seeds_fastest_and_per_method_learning_rate():
  configs = plan.grid(backbones=["b"], methods=["ft_full", "ft_last"],
                      datasets=["lfw"], seeds=[0, 1, 2], shots=[None, 5],
                      learning_rates={"ft_full": 1e-4}, learning_rate=1e-2)
  assert len(configs) == 12
  assert [c.seed for c in configs[:3]] == [0, 1, 2]
  assert {c.method for c in configs[:3]} == {"ft_full"}
  assert all(c.learning_rate == (1e-4 if c.method == "ft_full" else 1e-2)
             for c in configs)
  assert len({c.run_id for c in configs}) == 12


def test_empty_axis_is_an_error():
  with pytest.raises(ValueError, match="'datasets' is empty"):
    plan.grid(backbones=["b"], methods=["m"], datasets=[], seeds=[0])


def test_dedupe_keeps_first():
  a = plan.RunConfig(backbone="b", method="m", dataset="d", seed=0)
  b = plan.RunConfig(backbone="b", method="m", dataset="d", seed=1)
  assert plan.dedupe([a, b, a]) == [a, b]


def test_default_lowering_keeps_the_run_ids_of_stored_results():
  # Records written before runs had a lowering must keep their ids.
  store = ResultsStore(os.path.join(REPO, "benchmarks", "results",
                                    "transfer_quick.jsonl"))
  records = store.records()
  assert records
  for record in records:
    config = plan.RunConfig.from_dict(record["config"])
    assert config.lowering == plan.DEFAULT_LOWERING
    assert config.run_id == record["run_id"]


def test_every_lowering_is_its_own_run():
  base = dict(backbone="b", method="tinytl_b", dataset="lfw", seed=0,
              optimizer="sgd")
  lowerings = [plan.Lowering(), plan.Lowering("tl", "float"),
               plan.Lowering("tl", "int8", True),
               plan.Lowering("tl", "int8", False)]
  configs = [plan.RunConfig(**base, kernels=l.kernels, precision=l.precision,
                            qas=l.qas) for l in lowerings]
  assert len({c.run_id for c in configs}) == 4
  assert [c.lowering for c in configs] == lowerings
  assert configs[3].to_dict()["qas"] is False
  assert "qas" not in configs[1].to_dict()
  for config in configs:
    assert plan.RunConfig.from_dict(config.to_dict()) == config
  # qas means nothing in float: one id whatever it says.
  assert plan.RunConfig(**base, qas=False).run_id == configs[0].run_id
  assert "[tl int8 no QAS]" in configs[3].describe()


@pytest.mark.parametrize("bad, match", [
    (dict(precision="int8"), "needs kernels='tl'"),
    (dict(precision="int8", kernels="tl", optimizer="adam"), "must be 'sgd'"),
    (dict(kernels="cuda"), "kernels must be one of"),
    (dict(precision="int4", kernels="tl"), "precision one of")])
def test_impossible_lowerings_are_rejected_with_the_fix(bad, match):
  args = dict(backbone="b", method="m", dataset="d", seed=0, optimizer="sgd")
  args.update(bad)
  with pytest.raises(ValueError, match=match):
    plan.RunConfig(**args)


def test_grid_repeats_each_point_per_lowering_seeds_fastest():
  lowerings = (plan.Lowering("tl", "float"), plan.Lowering("tl", "int8"))
  configs = plan.grid(backbones=["b"], methods=["tinytl_b"], datasets=["d"],
                      seeds=[0, 1], optimizer="sgd", lowerings=lowerings)
  assert [(c.precision, c.seed) for c in configs] == [
      ("float", 0), ("float", 1), ("int8", 0), ("int8", 1)]
