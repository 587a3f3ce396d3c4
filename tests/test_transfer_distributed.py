"""The cluster sweep's driver loop, on an in-process backend.

The backend runs ``distributed.run_task`` (the real worker-side code) and can
lose tasks as a dead worker would, so retries, exactly-once writing and the
arena cache are checked without a cluster (tests/test_transfer_ray.py runs
the same on a real Ray cluster).
"""
import collections
import hashlib
import json

import pytest

from benchmarks.transfer_lib import distributed, plan, sweep
from benchmarks.transfer_lib.store import ResultsStore

from transfer_fakes import fake_factory, fake_run


class InlineBackend:
  """Runs each task when the driver waits for it, oldest first.

  ``lose[run_id] = n``: the first ``n`` attempts of that run execute and
  are then lost (the worker died before its result reached the driver).
  Each task runs as on a fresh worker process (its own runner and arena
  file), so only what the driver passes reaches it.
  """

  def __init__(self, factory, capacity=2, lose=None, measure_arena=True):
    self.factory, self._capacity = factory, capacity
    self.measure_arena = measure_arena
    self.lose = collections.Counter(lose or {})
    self.queue, self.submitted, self.cancelled = [], [], []
    self.max_in_flight = 0
    self._next = 0

  def capacity(self):
    return self._capacity

  def submit(self, config, arena_records):
    self._next += 1
    handle = (self._next, config)
    self.queue.append((handle, list(arena_records)))
    self.submitted.append(config.run_id)
    self.max_in_flight = max(self.max_in_flight, len(self.queue))
    return handle

  def wait(self, handles, timeout_s):
    del timeout_s
    assert set(h for h, _ in self.queue) == set(handles)
    return [self.queue[0][0]]

  def result(self, handle):
    (_, config), arena = self.queue.pop(0)
    try:
      payload = distributed.run_task(f"task-{id(self)}-{handle[0]}",
                                     self.factory,
                                     self.measure_arena, config.to_dict(),
                                     arena)
    except Exception as e:  # pylint: disable=broad-except
      raise distributed.RunFailed(f"{type(e).__name__}: {e}") from e
    if self.lose[config.run_id]:
      self.lose[config.run_id] -= 1
      raise distributed.RunLost("WorkerCrashedError (killed)")
    return payload

  def cancel(self, handles):
    self.cancelled += list(handles)


def _configs(seeds=(0, 1, 2)):
  return plan.grid(backbones=["b"], methods=["ft_full", "ft_last",
                                             "tinytl_lb"],
                   datasets=["lfw", "digits"], seeds=seeds)


def _local(tmp_path, configs, factory=fake_factory):
  path = str(tmp_path / "local.jsonl")
  with ResultsStore(path) as store:
    sweep.run_sweep(configs, store, factory(path, True), progress=False)
  return {r["run_id"]: r for r in ResultsStore(path).records()}


def test_every_run_once_and_equal_to_the_local_sweep(tmp_path):
  configs = _configs()
  path = str(tmp_path / "r.jsonl")
  backend = InlineBackend(fake_factory, capacity=3)
  with ResultsStore(path) as store:
    summary = distributed.run_distributed_sweep(configs, store, backend,
                                                progress=False)
  assert (summary.ran, summary.skipped, summary.retried) == (18, 0, 0)
  assert not summary.failed and not summary.stopped_early
  assert backend.max_in_flight == 3
  records = {r["run_id"]: r for r in ResultsStore(path).records()}
  assert records == _local(tmp_path, configs)


def test_lost_worker_reruns_the_run_and_it_is_written_once(tmp_path, capsys):
  configs = _configs(seeds=(0,))
  victim = configs[2]
  calls = collections.Counter()

  def counting(results_path, measure_arena):
    def run(config):
      calls[config.run_id] += 1
      return fake_run(config)
    del results_path, measure_arena
    return run

  path = str(tmp_path / "r.jsonl")
  backend = InlineBackend(counting, lose={victim.run_id: 2})
  with ResultsStore(path) as store:
    summary = distributed.run_distributed_sweep(configs, store, backend,
                                                progress=False)
  # The victim ran three times (finished twice before its worker died);
  # its record was written once.
  assert calls[victim.run_id] == 3 and summary.retried == 2
  assert summary.ran == len(configs) and not summary.failed
  ids = [r["run_id"] for r in ResultsStore(path).records()]
  assert sorted(ids) == sorted(c.run_id for c in configs)
  err = capsys.readouterr().err
  assert f"RETRY {victim.describe()} [{victim.run_id}]" in err
  assert "attempt 3 of 4" in err


def test_a_run_lost_on_every_attempt_fails_and_is_retried_next_sweep(
    tmp_path):
  configs = _configs(seeds=(0,))
  victim = configs[0]
  path = str(tmp_path / "r.jsonl")
  backend = InlineBackend(fake_factory, lose={victim.run_id: 4})
  with ResultsStore(path) as store:
    summary = distributed.run_distributed_sweep(configs, store, backend,
                                                progress=False)
  assert [c.run_id for c, _ in summary.failed] == [victim.run_id]
  assert "on each of 4 attempts" in summary.failed[0][1]
  assert summary.retried == 3 and victim.run_id not in ResultsStore(path)
  with ResultsStore(path) as store:
    again = distributed.run_distributed_sweep(
        configs, store, InlineBackend(fake_factory), progress=False)
  assert (again.ran, again.skipped) == (1, len(configs) - 1)


def test_failing_run_is_reported_not_stored_and_keep_going_false_raises(
    tmp_path):
  configs = _configs(seeds=(0,))
  bad = configs[1]

  def flaky(results_path, measure_arena):
    def run(config):
      if config.run_id == bad.run_id:
        raise ValueError("unsupported layer")
      return fake_run(config)
    del results_path, measure_arena
    return run

  path = str(tmp_path / "r.jsonl")
  with ResultsStore(path) as store:
    summary = distributed.run_distributed_sweep(
        configs, store, InlineBackend(flaky), progress=False)
  assert summary.failed == [(bad, "ValueError: unsupported layer")]
  assert summary.retried == 0 and bad.run_id not in ResultsStore(path)
  backend = InlineBackend(flaky, capacity=3)
  with ResultsStore(str(tmp_path / "s.jsonl")) as store:
    with pytest.raises(distributed.RunFailed, match="unsupported layer"):
      distributed.run_distributed_sweep(configs, store, backend,
                                        progress=False, keep_going=False)
  assert backend.cancelled  # The runs still in flight were cancelled.


def test_max_runs_then_resume(tmp_path):
  configs = _configs()
  path = str(tmp_path / "r.jsonl")
  backend = InlineBackend(fake_factory, capacity=4)
  with ResultsStore(path) as store:
    first = distributed.run_distributed_sweep(configs, store, backend,
                                              max_runs=5, progress=False)
  assert (first.ran, first.stopped_early, len(backend.submitted)) == (5, True,
                                                                      5)
  with ResultsStore(path) as store:
    second = sweep.run_sweep(configs, store, fake_run, progress=False)
  assert (second.skipped, second.ran, second.remaining) == (5, 13, 0)


def test_result_of_a_run_already_in_the_store_is_not_written_again(tmp_path):
  """Whatever delivers a second result for a run (a duplicated task), the
  store keeps the first."""
  configs = _configs(seeds=(0,))
  path = str(tmp_path / "r.jsonl")

  class Duplicating(InlineBackend):
    def result(self, handle):
      payload = super().result(handle)
      (_, config) = handle
      if config.run_id == configs[0].run_id:
        # Another copy of the task got there first.
        store.append(dict(run_id=config.run_id, config=config.to_dict(),
                          accuracy=-1.0))
      return payload

  with ResultsStore(path) as store:
    summary = distributed.run_distributed_sweep(
        configs, store, Duplicating(fake_factory), progress=False)
  records = ResultsStore(path).records()
  assert len(records) == len(configs) == summary.ran + 1
  assert [r["accuracy"] for r in records
          if r["run_id"] == configs[0].run_id] == [-1.0]


def _arena_factory(measured):
  """Like the real runner's arena cache: measures a graph missing from the
  cache file beside ``results_path`` and appends it there."""

  def factory(results_path, measure_arena):
    del measure_arena
    cache = distributed.arena_cache_path(results_path)

    def run(config):
      key = distributed.graph_group(config)
      key_id = hashlib.sha256(json.dumps(key).encode()).hexdigest()[:16]
      record = ResultsStore(cache).get(key_id)
      if record is None:
        measured.append(key)
        record = {"run_id": key_id, "arena_bytes": 1000 + len(measured)}
        with ResultsStore(cache) as store:
          store.append(record)
      return dict(fake_run(config), arena_bytes=record["arena_bytes"])

    return run

  return factory


def test_each_graph_is_measured_once_and_cached_by_the_driver(tmp_path):
  configs = _configs()  # 6 graphs x 3 seeds, seeds next to each other.
  path = str(tmp_path / "r.jsonl")
  measured = []
  backend = InlineBackend(_arena_factory(measured), capacity=2)
  arena_path = distributed.arena_cache_path(path)
  with ResultsStore(path) as store, ResultsStore(arena_path) as arena:
    distributed.run_distributed_sweep(configs, store, backend,
                                      arena_store=arena, progress=False)
  groups = {distributed.graph_group(c) for c in configs}
  # While a graph's first run measures it, the next runs submitted are of
  # other graphs; later runs get the measurement from the driver. Only when
  # nothing else is left does a run measure again rather than wait.
  first = [distributed.graph_group(c) for c in configs[:1]] + [
      distributed.graph_group(configs[3])]
  assert [distributed.graph_group(plan.RunConfig.from_dict(
      ResultsStore(path).get(i)["config"])) for i in backend.submitted[:2]
          ] == first
  assert set(measured) == groups and len(measured) <= len(groups) + 1
  assert len(ResultsStore(arena_path)) == len(groups)
  # Runs of one graph carry its one measurement.
  by_group = collections.defaultdict(set)
  for record in ResultsStore(path).records():
    config = plan.RunConfig.from_dict(record["config"])
    by_group[distributed.graph_group(config)].add(record["arena_bytes"])
  assert all(len(v) == 1 for v in by_group.values())
  # A second sweep (new runs of the same graphs) measures nothing.
  count = len(measured)
  more = _configs(seeds=(3,))
  with ResultsStore(path) as store, ResultsStore(arena_path) as arena:
    distributed.run_distributed_sweep(
        more, store, InlineBackend(_arena_factory(measured)),
        arena_store=arena, progress=False)
  assert len(measured) == count


def test_progress_line_counts_running_failed_retried(tmp_path, capsys):
  configs = _configs(seeds=(0,))
  backend = InlineBackend(fake_factory, lose={configs[0].run_id: 1})
  with ResultsStore(str(tmp_path / "r.jsonl")) as store:
    distributed.run_distributed_sweep(configs, store, backend, progress=True)
  err = capsys.readouterr().err
  assert "transfer sweep" in err and "running 2/2" in err
  assert "retried 1" in err and "6/6" in err
