"""What ``python -m benchmarks.transfer`` does, callable without flags."""
import dataclasses
import os
import sys
from typing import Callable, List, Optional

from benchmarks.transfer_lib import presets, publish, remeasure, sweep
from benchmarks.transfer_lib.store import ResultsStore


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
  command: str = "python -m benchmarks.transfer"


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


def run(options: Options,
        run_fn_factory: Optional[Callable[[str, bool], Callable]] = None,
        measure_factory: Optional[Callable] = None) -> int:
  """Runs the sweep (unless ``report_only``), re-measures the arenas if
  asked, and publishes the report.

  ``run_fn_factory(results_path, measure_arena)`` makes the per-run
  function; by default the real ``runner.TransferRunner``.
  ``measure_factory`` is passed to :func:`remeasure.remeasure_arenas`.

  Returns:
    The process exit code: 0, or 1 if some runs failed.
  """
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
      # Lazy: the runner imports TensorFlow, which --report_only never needs.
      from benchmarks.transfer_lib import runner
      run_fn_factory = runner.TransferRunner.for_results
    with ResultsStore(path) as store:
      run_fn = run_fn_factory(path, options.measure_arena)
      summary = sweep.run_sweep(configs, store, run_fn,
                                max_runs=options.max_runs,
                                progress=options.progress)
    failed = summary.failed
    print(f"{path}: {summary.skipped} runs were done before, {summary.ran} "
          f"ran now, {len(failed)} failed, {summary.remaining} left.",
          file=sys.stderr)
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

