"""The episode benchmark's plan, resumable store and summary (fake runs)."""
from benchmarks import episode_eval
from benchmarks.transfer_lib.store import ResultsStore


def _fake(run):
  return {"accuracy": 0.5 + 0.1 * (run.backbone == "b_meta")
                      + 0.01 * run.episode, "wall_time_s": 0.0}


def test_plan_run_resume_and_summary(tmp_path):
  runs = episode_eval.plan(["b", "b_meta"], ["d"], ["protonet", "ft_last"], 3,
                           learning_rates={"ft_last": 1e-2})
  assert len(runs) == 12 and len({r.run_id for r in runs}) == 12
  assert {r.learning_rate for r in runs if r.method == "ft_last"} == {1e-2}
  path = str(tmp_path / "e.jsonl")
  assert episode_eval.run_all(runs, path, _fake, max_runs=5) == 5
  assert episode_eval.run_all(runs, path, _fake) == 7
  assert episode_eval.run_all(runs, path, _fake) == 0
  text = episode_eval.summary(ResultsStore(path).records(), runs)
  assert "| d | protonet | 51.0 ±" in text and "+10.0" in text
