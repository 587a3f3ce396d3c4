"""benchmarks.transfer_lib.remeasure: rewriting the measured arena column."""
import io
import json

from benchmarks.transfer_lib import remeasure
from benchmarks.transfer_lib.store import ResultsStore


def _record(run_id, method, seed, num_classes=10, arena=111):
  return {"run_id": run_id, "accuracy": 0.5 + seed / 10, "arena_bytes": arena,
          "arena_error": None, "num_classes": num_classes,
          "resolution_px": 32,
          "config": {"backbone": "tiny", "method": method, "dataset": "d",
                     "seed": seed, "shots": 10, "resolution": None,
                     "batch_size": 8, "epochs": 1, "learning_rate": 1e-3,
                     "optimizer": "adam"}}


def test_each_graph_is_measured_once_and_every_run_updated(tmp_path):
  path = str(tmp_path / "r.jsonl")
  (tmp_path / "r.arena.jsonl").write_text('{"run_id": "old"}\n')
  with ResultsStore(path) as store:
    for i, (method, seed, classes) in enumerate([
        ("ft_last", 0, 10), ("ft_last", 1, 10), ("ft_full", 0, 10),
        ("ft_last", 0, 2)]):
      store.append(_record(f"r{i}", method, seed, classes))
  calls = []

  def factory(cache_path):
    assert cache_path.endswith("r.arena.jsonl.new")

    def measure(config, resolution, num_classes):
      calls.append((config.method, resolution, num_classes))
      with open(cache_path, "a", encoding="utf-8") as f:
        f.write(json.dumps({"run_id": config.method}) + "\n")
      return {"arena_bytes": 1000 * len(calls), "arena_error": None}

    return measure

  assert remeasure.remeasure_arenas(path, factory, log=io.StringIO()) == 3
  assert sorted(calls) == [("ft_full", 32, 10), ("ft_last", 32, 2),
                           ("ft_last", 32, 10)]
  records = ResultsStore(path).records()
  assert [r["run_id"] for r in records] == ["r0", "r1", "r2", "r3"]
  # Accuracies kept; the two ft_last/10-class runs share one measurement.
  assert [r["accuracy"] for r in records] == [0.5, 0.6, 0.5, 0.5]
  assert records[0]["arena_bytes"] == records[1]["arena_bytes"] != 111
  assert len({r["arena_bytes"] for r in records}) == 3
  # The fresh cache replaced the old one.
  assert "old" not in (tmp_path / "r.arena.jsonl").read_text()
  assert not (tmp_path / "r.arena.jsonl.new").exists()
