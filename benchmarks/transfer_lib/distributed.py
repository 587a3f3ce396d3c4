"""Runs a sweep as tasks on a cluster; the driver alone writes the store.

Exactly once rests on who writes what:

- a task (:func:`run_task`, on a worker) runs one configuration and returns
  its measurements; it writes nothing the driver reads;
- the driver appends a record to the results store when a task's result
  arrives, and only if the store does not hold that run id yet, so a retried
  or duplicated task cannot write twice;
- a task lost with its worker (process killed, node gone, killed for memory)
  is submitted again, up to ``max_attempts`` times; a task that raises is a
  failed run, reported and left out of the store as in the local sweep;
- anything the driver has not appended when it is interrupted is simply run
  again by the next sweep, which skips what the store holds.

The TFLM arena is measured inside the task, like the local runner does. Its
cache (``<results>.arena.jsonl``) lives with the driver: each task gets the
cached records, its runner measures only a graph missing from them, and the
task returns the records it added; the driver appends them, once per graph.
To measure each graph once, the driver does not start a second run of a
graph group while the first one (which measures) is in flight, as long as
other runs are waiting.

The cluster itself is a backend (``ray_executor.RayBackend``; tests use an
in-process one) with this interface::

  capacity() -> int                    # tasks the cluster runs at once
  submit(config, arena_records) -> handle
  wait(handles, timeout_s) -> [handle] # the finished ones (maybe none)
  result(handle) -> payload            # or raises RunLost / RunFailed
  cancel(handles)
"""
import atexit
import collections
import dataclasses
import os
import shutil
import socket
import sys
import tempfile
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import tqdm

from benchmarks.transfer_lib import plan
from benchmarks.transfer_lib.plan import RunConfig
from benchmarks.transfer_lib.store import ResultsStore
from benchmarks.transfer_lib.sweep import SweepSummary

#: ``factory(results_path, measure_arena) -> run_fn``, as for the local sweep.
#: On a worker, ``results_path`` is a file in the worker's own temporary
#: directory: the runner keeps its arena cache beside it.
RunFnFactory = Callable[[str, bool], Callable[[RunConfig], dict]]

#: Submissions of one run before it counts as failed (the first try and
#: three more after lost workers).
MAX_ATTEMPTS = 4


class RunLost(Exception):
  """The worker running a task died before returning; the run is re-run."""


class RunFailed(Exception):
  """The run itself raised (the message says how); it is not re-run now."""

  def __init__(self, message: str, details: str = ""):
    super().__init__(message)
    self.details = details


def arena_cache_path(results_path: str) -> str:
  """The arena cache beside a results file (as ``TransferRunner.for_results``)."""
  return os.path.splitext(results_path)[0] + ".arena.jsonl"


def transfer_runner(results_path: str, measure_arena: bool = True):
  """The real per-run function, ``runner.TransferRunner.for_results``.

  A ``RunFnFactory`` that imports the runner (and so TensorFlow) where it is
  called: on the workers, not on a driver that only schedules.
  """
  # Lazy: the runner imports TensorFlow, which a scheduling driver never needs.
  from benchmarks.transfer_lib import runner  # pylint: disable=import-outside-toplevel
  return runner.TransferRunner.for_results(results_path, measure_arena)


def graph_group(config: RunConfig) -> Tuple:
  """Runs of one group lower to the same train-step graph.

  The arena's key is (backbone, method, resolution in pixels, batch, number
  of classes, lowering); the resolution follows from the backbone and the
  configured resolution, the classes from the dataset, so these fields fix
  the key without loading anything. Different groups may still share a key.
  """
  return (config.backbone, config.method, config.dataset, config.resolution,
          config.batch_size, config.kernels, config.precision, config.qas)


# -- Worker side --------------------------------------------------------------

# One runner per worker process and sweep: it keeps its loaded datasets and
# its arena cache file between the tasks that process runs.
_worker_state: Dict[str, object] = {}


def _worker_runner(sweep_token: str, factory: RunFnFactory,
                   measure_arena: bool):
  if _worker_state.get("token") != sweep_token:
    if "dir" in _worker_state:
      shutil.rmtree(_worker_state["dir"], ignore_errors=True)
    directory = tempfile.mkdtemp(prefix="tflite_tl_transfer_task_")
    atexit.register(shutil.rmtree, directory, True)
    results = os.path.join(directory, "task.jsonl")
    _worker_state.clear()
    _worker_state.update(token=sweep_token, dir=directory,
                         arena_path=arena_cache_path(results),
                         run_fn=factory(results, measure_arena))
  return _worker_state["run_fn"], _worker_state["arena_path"]


def run_task(sweep_token: str, factory: RunFnFactory, measure_arena: bool,
             config: dict, arena_records: List[dict]) -> dict:
  """Runs one configuration on a worker (the body of a cluster task).

  Args:
    sweep_token: identifies the sweep, so that a worker process serving
      several sweeps starts a fresh runner for each.
    factory: makes the per-run function (see ``RunFnFactory``).
    measure_arena: passed to ``factory``.
    config: ``RunConfig.to_dict()`` of the run.
    arena_records: the driver's arena cache; the runner measures only
      graphs missing from it.

  Returns:
    ``{"measurements", "arena_records", "host", "pid"}``: the run's
    measurements, the arena records measured by this task, and where it ran.
  """
  run_fn, arena_path = _worker_runner(sweep_token, factory, measure_arena)
  known = {r["run_id"] for r in arena_records}
  with ResultsStore(arena_path) as cache:
    missing = [r for r in arena_records if r["run_id"] not in cache]
    if missing:
      cache.replace_all(cache.records() + missing)
  measurements = run_fn(RunConfig.from_dict(config))
  measured = [r for r in ResultsStore(arena_path).records()
              if r["run_id"] not in known]
  return {"measurements": measurements, "arena_records": measured,
          "host": socket.gethostname(), "pid": os.getpid()}


# -- Driver side --------------------------------------------------------------


@dataclasses.dataclass
class _Progress:
  """The driver's counters, shown on one line for the whole cluster."""
  bar: tqdm.tqdm
  running: int = 0
  capacity: int = 0
  failed: int = 0
  retried: int = 0
  _shown: str = ""

  def show(self) -> None:
    """Redraws the line when a count changed (not on every poll, which would
    fill a log with identical lines)."""
    text = (f"running {self.running}/{self.capacity}, failed {self.failed}, "
            f"retried {self.retried}")
    if text != self._shown:
      self._shown = text
      self.bar.set_postfix_str(text, refresh=True)


def _next_config(pending: List[RunConfig], measuring: collections.Counter,
                 measured: set) -> RunConfig:
  """Takes the first pending run whose graph is not being measured by a
  run in flight; if every pending run waits on one, the first anyway (a
  second measurement beats an idle worker)."""
  for i, config in enumerate(pending):
    group = graph_group(config)
    if group in measured or not measuring[group]:
      return pending.pop(i)
  return pending.pop(0)


def run_distributed_sweep(configs: Sequence[RunConfig], store: ResultsStore,
                          backend, *, arena_store: Optional[ResultsStore] = None,
                          max_runs: Optional[int] = None,
                          progress: bool = True, keep_going: bool = True,
                          max_attempts: int = MAX_ATTEMPTS,
                          poll_s: float = 1.0) -> SweepSummary:
  """Runs every config whose run id is not in ``store`` as a cluster task.

  Same contract as ``sweep.run_sweep`` (order, ``max_runs``, failures left
  out and retried by the next sweep), with the runs in parallel.

  Args:
    configs: the planned runs (duplicates by run id are run once).
    store: the open (locked) results store; only this function appends.
    backend: the cluster (see the module docstring).
    arena_store: the open arena cache; tasks read it and the records they
      measured are appended to it. ``None``: tasks get no cache.
    max_runs: stop submitting once this many runs finished or are running.
    progress: show the bar; retries and failures are printed either way.
    keep_going: with ``False`` the first failed run cancels the rest and
      raises ``RunFailed``.
    max_attempts: submissions of one run whose worker keeps dying.
    poll_s: longest wait between refreshes of the display.

  Returns:
    A ``SweepSummary`` (``retried``: re-submissions after lost workers).
  """
  unique = plan.dedupe(configs)
  todo = [c for c in unique if c.run_id not in store]
  skipped = len(unique) - len(todo)
  pending = list(todo)
  # Groups with a measured arena (in the cache): their runs need not wait.
  measured = {graph_group(RunConfig.from_dict(r["config"]))
              for r in store.records()
              if "config" in r and r.get("arena_bytes") is not None}
  measuring = collections.Counter()
  arena_records = list(arena_store.records()) if arena_store else []
  attempts = collections.Counter()
  in_flight: Dict[object, RunConfig] = {}
  failed: List[Tuple[RunConfig, str]] = []
  ran = 0
  bar = tqdm.tqdm(total=len(unique), initial=skipped, desc="transfer sweep",
                  unit="run", disable=not progress, file=sys.stderr,
                  dynamic_ncols=True)
  shown = _Progress(bar)

  def finish(config: RunConfig, payload: dict) -> None:
    nonlocal ran
    for record in payload["arena_records"]:
      if arena_store is not None and record["run_id"] not in arena_store:
        arena_store.append(record)
        arena_records.append(record)
    if config.run_id in store:
      return  # A duplicate of a run already written: never twice.
    record = dict(payload["measurements"])
    record["run_id"] = config.run_id
    record["config"] = config.to_dict()
    store.append(record)
    ran += 1
    bar.update(1)

  try:
    while True:
      shown.capacity = max(1, backend.capacity())
      while (pending and len(in_flight) < shown.capacity
             and (max_runs is None or ran + len(in_flight) < max_runs)):
        config = (_next_config(pending, measuring, measured)
                  if arena_store is not None else pending.pop(0))
        attempts[config.run_id] += 1
        in_flight[backend.submit(config, arena_records)] = config
        measuring[graph_group(config)] += 1
      shown.running = len(in_flight)
      shown.show()
      if not in_flight:
        break
      for handle in backend.wait(list(in_flight), poll_s):
        config = in_flight.pop(handle)
        group = graph_group(config)
        measuring[group] -= 1
        try:
          payload = backend.result(handle)
        except RunLost as e:
          if attempts[config.run_id] < max_attempts:
            shown.retried += 1
            pending.insert(0, config)
            bar.write(f"RETRY {config.describe()} [{config.run_id}]: {e}; "
                      f"attempt {attempts[config.run_id] + 1} of "
                      f"{max_attempts}", file=sys.stderr)
            continue
          failure = RunFailed(f"{e} (on each of {max_attempts} attempts)")
        except RunFailed as e:
          failure = e
        else:
          measured.add(group)
          finish(config, payload)
          continue
        if not keep_going:
          raise failure
        failed.append((config, str(failure)))
        shown.failed += 1
        bar.write(f"FAILED {config.describe()} [{config.run_id}]: "
                  f"{failure}\n{failure.details}".rstrip(), file=sys.stderr)
        bar.update(1)
  finally:
    if in_flight:
      backend.cancel(list(in_flight))
    bar.close()
  stopped_early = len(todo) > ran + len(failed)
  return SweepSummary(total=len(unique), skipped=skipped, ran=ran,
                      failed=failed, stopped_early=stopped_early,
                      retried=shown.retried)
