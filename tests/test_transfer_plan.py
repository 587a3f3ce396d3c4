import subprocess
import sys

import pytest

from benchmarks.transfer_lib import plan


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
