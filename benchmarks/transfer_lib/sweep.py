"""Runs the configurations that are not in the results store yet.

The per-run function is injected: the CLI passes the real one
(``runner.TransferRunner``), tests pass cheap fakes. It takes a ``RunConfig``
and returns a dict of measurements; the sweep adds the run id and the
configuration and appends the record to the store as soon as the run ends.
"""
import dataclasses
import sys
import traceback
from typing import Callable, List, Optional, Sequence, Tuple

import tqdm

from benchmarks.transfer_lib.plan import RunConfig
from benchmarks.transfer_lib.store import ResultsStore

RunFn = Callable[[RunConfig], dict]


@dataclasses.dataclass
class SweepSummary:
  """What a call to ``run_sweep`` did."""
  total: int
  skipped: int  # Already in the store before this call.
  ran: int
  failed: List[Tuple[RunConfig, str]]
  stopped_early: bool  # ``max_runs`` was reached with runs left to do.
  retried: int = 0  # Runs submitted again after their worker died.

  @property
  def remaining(self) -> int:
    return self.total - self.skipped - self.ran


def run_sweep(configs: Sequence[RunConfig], store: ResultsStore, run_fn: RunFn,
              *, max_runs: Optional[int] = None, progress: bool = True,
              keep_going: bool = True) -> SweepSummary:
  """Runs every config whose run id is not in ``store``, in order.

  Args:
    configs: the planned runs (duplicates by run id are run once).
    store: an open (locked) results store; finished runs are appended to it.
    run_fn: the per-run function.
    max_runs: stop after this many new runs (``None``: run all). A sweep
      stopped this way, or killed, continues where it stopped when called
      again with the same configs.
    progress: show a tqdm bar (done/total and the current run) on stderr.
    keep_going: a failing run is reported and left out of the store, so that
      the next call retries it, and the sweep goes on; with ``False`` the
      error is raised.

  Returns:
    A ``SweepSummary``.
  """
  unique, seen = [], set()
  for config in configs:
    if config.run_id not in seen:
      seen.add(config.run_id)
      unique.append(config)
  todo = [c for c in unique if c.run_id not in store]
  skipped = len(unique) - len(todo)
  failed, ran = [], 0
  bar = tqdm.tqdm(total=len(unique), initial=skipped, desc="transfer sweep",
                  unit="run", disable=not progress, file=sys.stderr,
                  dynamic_ncols=True)
  try:
    for config in todo:
      if max_runs is not None and ran >= max_runs:
        break
      bar.set_postfix_str(config.describe(), refresh=True)
      try:
        measurements = run_fn(config)
      except Exception as e:  # pylint: disable=broad-except
        if not keep_going:
          raise
        message = f"{type(e).__name__}: {e}"
        failed.append((config, message))
        bar.write(f"FAILED {config.describe()} [{config.run_id}]: {message}\n"
                  + traceback.format_exc(limit=3))
        bar.update(1)
        continue
      record = dict(measurements)
      record["run_id"] = config.run_id
      record["config"] = config.to_dict()
      store.append(record)
      ran += 1
      bar.update(1)
  finally:
    bar.close()
  stopped_early = len(todo) > ran + len(failed)
  return SweepSummary(total=len(unique), skipped=skipped, ran=ran,
                      failed=failed, stopped_early=stopped_early)
