import json
import os
import signal
import subprocess
import sys
import time

import pytest

from benchmarks.transfer_lib import plan, sweep
from benchmarks.transfer_lib.store import ResultsStore

from transfer_fakes import fake_run

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _configs(n_seeds=3):
  return plan.grid(backbones=["b"], methods=["ft_full", "tinytl_lb"],
                   datasets=["lfw", "digits"], seeds=range(n_seeds))


def test_runs_everything_once_and_skips_finished(tmp_path):
  path = str(tmp_path / "r.jsonl")
  configs = _configs()
  calls = []

  def run_fn(config):
    calls.append(config.run_id)
    return fake_run(config)

  with ResultsStore(path) as store:
    first = sweep.run_sweep(configs, store, run_fn, max_runs=5, progress=False)
  assert (first.ran, first.skipped, first.stopped_early) == (5, 0, True)
  with ResultsStore(path) as store:
    second = sweep.run_sweep(configs, store, run_fn, progress=False)
  assert (second.ran, second.skipped, second.remaining) == (7, 5, 0)
  assert sorted(calls) == sorted(c.run_id for c in configs)
  records = ResultsStore(path).records()
  assert [r["run_id"] for r in records] == [c.run_id for c in configs]
  assert records[0]["config"] == configs[0].to_dict()
  assert records[0]["accuracy"] == fake_run(configs[0])["accuracy"]


def test_failing_run_is_reported_and_retried_next_time(tmp_path):
  path = str(tmp_path / "r.jsonl")
  configs = _configs(1)
  bad = configs[1].run_id

  def flaky(config):
    if config.run_id == bad:
      raise RuntimeError("lowering failed")
    return fake_run(config)

  with ResultsStore(path) as store:
    summary = sweep.run_sweep(configs, store, flaky, progress=False)
  assert [c.run_id for c, _ in summary.failed] == [bad]
  assert "lowering failed" in summary.failed[0][1]
  assert bad not in ResultsStore(path)
  with ResultsStore(path) as store:
    summary = sweep.run_sweep(configs, store, fake_run, progress=False)
  assert summary.ran == 1 and bad in store
  # With keep_going=False the first failure stops the sweep.
  with ResultsStore(path) as store, pytest.raises(RuntimeError, match="x"):
    sweep.run_sweep(configs + [plan.RunConfig(backbone="b", method="ft_full",
                                              dataset="x", seed=9)],
                    store, _raise, keep_going=False,
                    progress=False)


def _raise(config):
  raise RuntimeError(config.dataset)


_CHILD = """
import sys
sys.path.insert(0, {tests!r})
from benchmarks.transfer_lib import plan, sweep
from benchmarks.transfer_lib.store import ResultsStore
from transfer_fakes import fake_run
configs = plan.grid(backbones=["b"], methods=["ft_full", "ft_last", "tinytl_lb"],
                    datasets=["lfw", "digits"], seeds=[0, 1, 2])
with ResultsStore({path!r}) as store:
  sweep.run_sweep(configs, store, lambda c: fake_run(c, sleep_s=0.05),
                  progress=True)
"""


def _lines(path):
  if not os.path.exists(path):
    return 0
  with open(path, "rb") as f:
    return f.read().count(b"\n")


def test_sigkilled_sweep_resumes_without_loss_or_duplicates(tmp_path):
  path = str(tmp_path / "r.jsonl")
  code = _CHILD.format(tests=os.path.dirname(__file__), path=path)
  child = subprocess.Popen([sys.executable, "-c", code], cwd=REPO,
                           stderr=subprocess.PIPE)
  deadline = time.time() + 60
  while _lines(path) < 4 and time.time() < deadline:
    time.sleep(0.01)
  os.kill(child.pid, signal.SIGKILL)
  child.wait()
  done = _lines(path)
  assert 4 <= done < 18, "the sweep was not interrupted mid-way"
  # A kill mid-write leaves a fragment; make sure the restart copes with one.
  with open(path, "ab") as f:
    f.write(b'{"run_id": "half-writ')
  restarted = subprocess.run([sys.executable, "-c", code], cwd=REPO,
                             capture_output=True, text=True, check=True)
  assert "transfer sweep" in restarted.stderr  # The progress display.
  with open(path) as f:
    ids = [json.loads(line)["run_id"] for line in f]
  assert len(ids) == 18 and len(set(ids)) == 18
  # The records written before the kill are kept as they were.
  assert _lines(path) == 18
