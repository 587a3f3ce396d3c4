"""What ``python -m benchmarks.transfer`` does, callable without flags."""
import dataclasses
import importlib.util
import os
import sys
from typing import Callable, List, Optional

from benchmarks.transfer_lib import distributed, presets, publish, ray_executor
from benchmarks.transfer_lib import plan, remeasure, sweep
from benchmarks.transfer_lib.store import ResultsStore


#: Where the runs execute: in this process, or as tasks on a Ray cluster.
EXECUTORS = ("local", "ray")


@dataclasses.dataclass
class Options:
  """The CLI's settings; ``None`` overrides keep the preset's value."""
  preset: str = "quick"
  results: Optional[str] = None
  out_dir: str = "benchmarks/results"
  benchmarks_md: Optional[str] = None
  methods: Optional[List[str]] = None
  datasets: Optional[List[str]] = None
  seeds: Optional[List[str]] = None
  shots: Optional[List[str]] = None
  backbones: Optional[List[str]] = None
  epochs: Optional[int] = None
  max_runs: Optional[int] = None
  measure_arena: bool = True
  ablations: bool = True
  report_only: bool = False
  merge_from: Optional[List[str]] = None
  remeasure_arena: bool = False
  progress: bool = True
  executor: str = "local"
  ray_address: Optional[str] = None
  command: str = "python -m benchmarks.transfer"
  # The lowering of every run (``None``: the preset's lowerings). int8
  # implies the "tl" kernels; qas matters for int8 only.
  kernels: Optional[str] = None
  precision: Optional[str] = None
  qas: Optional[bool] = None


def _parse_shots(values: List[str]) -> List[Optional[int]]:
  out = []
  for v in values:
    if v.strip().lower() == "full":
      out.append(None)
    else:
      try:
        out.append(int(v))
      except ValueError as e:
        raise ValueError(f"--shots takes integers (images per class) or "
                         f"'full', got {v!r}.") from e
  return out


def lowering_override(options: Options) -> Optional[plan.Lowering]:
  """The one lowering the options ask for, or ``None`` (the preset's).

  ``--precision=int8`` alone means the "tl" kernels (the only flavor with
  an int8 step); ``--qas`` alone means int8.
  """
  if options.kernels is None and options.precision is None and (
      options.qas is None):
    return None
  precision = options.precision or ("int8" if options.qas is not None
                                    else "float")
  kernels = options.kernels or ("tl" if precision == "int8" else "builtin")
  if precision == "int8" and kernels != "tl":
    raise ValueError("--precision=int8 needs --kernels=tl (the transfer "
                     "benchmark trains the tl flavor's int8 step on the "
                     "host; builtin int8 stores int8 weights only).")
  if precision == "float" and options.qas is not None:
    raise ValueError("--qas/--noqas is an int8 setting; add "
                     "--precision=int8 or drop it.")
  qas = True if options.qas is None else bool(options.qas)
  return plan.Lowering(kernels, precision, qas)


def resolve_preset(options: Options) -> presets.Preset:
  """The preset with the options' overrides applied."""
  base = presets.get_preset(options.preset)
  overrides = {}
  if options.methods:
    overrides["methods"] = tuple(options.methods)
  if options.datasets:
    overrides["datasets"] = tuple(options.datasets)
  if options.seeds:
    try:
      overrides["seeds"] = tuple(int(s) for s in options.seeds)
    except ValueError as e:
      raise ValueError(f"--seeds takes integers, got {options.seeds}.") from e
  if options.shots:
    overrides["shots"] = tuple(_parse_shots(options.shots))
  if options.backbones:
    overrides["backbones"] = tuple(options.backbones)
  if options.epochs:
    overrides["epochs"] = int(options.epochs)
  lowering = lowering_override(options)
  if lowering is not None:
    overrides["lowerings"] = (lowering,)
  if not options.ablations:
    overrides["ablations"] = ()
  elif options.datasets:
    # Ablations on datasets the user left out of the sweep are dropped.
    overrides["ablations"] = tuple(
        dataclasses.replace(a, datasets=tuple(d for d in a.datasets
                                      if d in options.datasets))
        for a in base.ablations if set(a.datasets) & set(options.datasets))
  return dataclasses.replace(base, **overrides)


def results_path(options: Options) -> str:
  return options.results or os.path.join(
      "benchmarks", "results", f"transfer_{options.preset}.jsonl")


def check_executor(options: Options) -> None:
  """ValueError naming the fix if the executor settings cannot work."""
  if options.executor not in EXECUTORS:
    raise ValueError(f"--executor must be one of {list(EXECUTORS)}, got "
                     f"{options.executor!r}.")
  resolve_preset(options).configs()  # ValueError for a bad lowering
  if options.ray_address and options.executor != "ray":
    raise ValueError("--ray_address is the cluster of --executor=ray; add "
                     "--executor=ray or drop --ray_address.")
  if (options.executor == "ray" and not options.report_only
      and importlib.util.find_spec("ray") is None):
    raise ValueError(ray_executor.INSTALL_HINT)


def _run_sweep(options: Options, configs, store: ResultsStore, path: str,
               run_fn_factory) -> sweep.SweepSummary:
  """The sweep on the chosen executor; both append to ``store`` only."""
  if options.executor == "local":
    run_fn = run_fn_factory(path, options.measure_arena)
    return sweep.run_sweep(configs, store, run_fn, max_runs=options.max_runs,
                           progress=options.progress)
  if not options.measure_arena:
    return ray_executor.run_sweep(
        configs, store, run_fn_factory, measure_arena=False,
        address=options.ray_address, max_runs=options.max_runs,
        progress=options.progress)
  with ResultsStore(distributed.arena_cache_path(path)) as arena_store:
    return ray_executor.run_sweep(
        configs, store, run_fn_factory, measure_arena=True,
        arena_store=arena_store, address=options.ray_address,
        max_runs=options.max_runs, progress=options.progress)


def run(options: Options,
        run_fn_factory: Optional[Callable[[str, bool], Callable]] = None,
        measure_factory: Optional[Callable] = None) -> int:
  """Runs the sweep (unless ``report_only``), re-measures the arenas if
  asked, and publishes the report.

  ``run_fn_factory(results_path, measure_arena)`` makes the per-run
  function; by default the real ``runner.TransferRunner``. With the Ray
  executor it is called on each worker, so it must be importable there.
  ``measure_factory`` is passed to :func:`remeasure.remeasure_arenas`.

  Returns:
    The process exit code: 0, or 1 if some runs failed.
  """
  check_executor(options)
  preset = resolve_preset(options)
  path = results_path(options)
  configs = preset.configs()
  failed = []
  for other in options.merge_from or ():
    with ResultsStore(path) as store:
      added = store.merge_from(other)
    print(f"merged {added} new runs from {other} into {path}", file=sys.stderr)
  if not options.report_only:
    if run_fn_factory is None:
      run_fn_factory = distributed.transfer_runner
    with ResultsStore(path) as store:
      summary = _run_sweep(options, configs, store, path, run_fn_factory)
    failed = summary.failed
    retried = (f", {summary.retried} re-run after a lost worker"
               if summary.retried else "")
    print(f"{path}: {summary.skipped} runs were done before, {summary.ran} "
          f"ran now, {len(failed)} failed{retried}, {summary.remaining} "
          "left.", file=sys.stderr)
    if summary.stopped_early:
      print("Stopped at --max_runs; run the same command again to continue.",
            file=sys.stderr)
  if options.remeasure_arena:
    count = remeasure.remeasure_arenas(path, measure_factory)
    print(f"{path}: re-measured the arena of {count} graphs.",
          file=sys.stderr)
  wanted = {c.run_id for c in configs}
  records = [r for r in ResultsStore(path).records() if r["run_id"] in wanted]
  stem = os.path.splitext(os.path.basename(path))[0]
  for written in publish.publish(records, preset, options.out_dir, stem,
                                 options.command, options.benchmarks_md):
    print(f"wrote {written}", file=sys.stderr)
  for config, message in failed:
    print(f"FAILED {config.describe()}: {message}", file=sys.stderr)
  return 1 if failed else 0

