"""The sparse-update sections of a sweep's report (preset ``tinytrain``).

- targets: TinyTrain against TinyTL-L+B (at least its accuracy at no more
  than half its measured arena) and against FT-Full (at least its
  accuracy), per backbone and dataset;
- channel criterion: Fisher against L2 norm and random, same layers;
- allocation of the budget and step size: each pair of values on the same
  cells, paired over seeds;
- memory budget: accuracy, modelled training state, measured arena and
  selection time per budget;
- figures: accuracy against the *measured* TFLM arena, all methods, and the
  budget sweep as TinyTrain's curve.

Everything is a function of the result records (deterministic text and
figures); nothing is emitted when the records hold no tinytrain runs.
"""
import math
import os
from typing import Dict, List, Sequence

from benchmarks.transfer_lib import plot
from benchmarks.transfer_lib import report
from benchmarks.transfer_lib.aggregate import Group, Stat, select
from benchmarks.transfer_lib.presets import LEARNING_RATE_AXIS

TINYTRAIN = "tinytrain"
FIGURE_TAG = "_sparse_"
TARGET_MAX_ARENA_RATIO = 0.5


def is_sparse_figure(path: str) -> bool:
  return FIGURE_TAG in os.path.basename(path)


def _options(group: Group) -> Dict:
  return dict(group.key.get("method_options", ()))


def _ablation(preset, axis):
  return next((a for a in preset.ablations if a.axis == axis), None)


def _main_options(preset, backbone: str) -> Dict:
  return dict(preset.main_options(backbone).get(TINYTRAIN, {}))


def _main_groups(groups, preset) -> List[Group]:
  return report.main_groups(groups, preset.batch_size, preset.main_options,
                            preset.learning_rate_of)


def _main_settings(groups, preset) -> List[Group]:
  """Every group run with its method's main options and step size."""
  return report.drop_option_ablations(groups, preset.main_options,
                                      preset.learning_rate_of)


def _value(group: Group, axis: str, implied=None):
  """``group``'s setting of ``axis`` (``implied``: its value when the
  options leave it out)."""
  if axis == LEARNING_RATE_AXIS:
    return float(group.key["learning_rate"])
  return _options(group).get(axis, implied)


def _varied(groups, preset, axis) -> List[Group]:
  """TinyTrain groups that differ from their backbone's main options and
  step size only in ``axis``."""
  out = []
  for g in select(groups, method=TINYTRAIN):
    main = _main_options(preset, g.key["backbone"])
    options = _options(g)
    if {k: v for k, v in options.items() if k != axis} != {
        k: v for k, v in main.items() if k != axis}:
      continue
    if axis != LEARNING_RATE_AXIS and not report.has_main_step(
        g, preset.learning_rate_of):
      continue
    out.append(g)
  return out


def _kb(value: float) -> str:
  return "–" if value is None or math.isnan(value) else f"{value / 1024:,.1f}"


def _yes(ok: bool) -> str:
  return "met" if ok else "**missed**"


def _stat(cell, method, metric):
  found = select(cell, method=method)
  return found[0].stats[metric] if found else None


def targets_table(groups: Sequence[Group], preset) -> str:
  main = _main_groups(groups, preset)
  rows = []
  for backbone in report.ordered_unique(g.key["backbone"] for g in main):
    for dataset in report.ordered_unique(g.key["dataset"] for g in main):
      for shots in report.ordered_unique(g.key["shots"] for g in main):
        cell = select(main, backbone=backbone, dataset=dataset, shots=shots)
        tt, lb, full = (_stat(cell, m, "accuracy")
                        for m in (TINYTRAIN, "tinytl_lb", "ft_full"))
        if tt is None or lb is None or full is None:
          continue
        tt_arena = _stat(cell, TINYTRAIN, "arena_bytes")
        lb_arena = _stat(cell, "tinytl_lb", "arena_bytes")
        ratio = (tt_arena.mean / lb_arena.mean
                 if tt_arena.n and lb_arena.n else math.nan)
        gap_lb = 100 * (tt.mean - lb.mean)
        gap_full = 100 * (tt.mean - full.mean)
        lb_ok = gap_lb >= 0 and ratio <= TARGET_MAX_ARENA_RATIO
        rows.append([
            f"`{backbone}`", dataset, report.shots_label(shots),
            report.fmt_acc(tt), report.fmt_acc(lb),
            f"{gap_lb:+.1f}", _kb(tt_arena.mean), _kb(lb_arena.mean),
            f"{ratio:.2f}", _yes(lb_ok), report.fmt_acc(full),
            f"{gap_full:+.1f} ({_yes(gap_full >= 0)})"])
  if not rows:
    return "_Needs TinyTrain, TinyTL-L+B and FT-Full results._"
  return report.table(
      ["Backbone", "Dataset", "Shots", "TinyTrain acc. (%)",
       "TinyTL-L+B acc. (%)", "TT − L+B (pp)", "TT arena (KB)",
       "L+B arena (KB)", f"arena ratio (target ≤ {TARGET_MAX_ARENA_RATIO:g})",
       "≥ L+B at ≤ ½ its arena", "FT-Full acc. (%)",
       "TT − Full (pp, target ≥ 0)"], rows)


def _ablation_cells(groups, preset, axis, implied=None):
  """[(backbone, dataset, {value: group})] of ``axis``'s ablation, each cell
  with at least two of its values (``implied``: the value of groups whose
  options leave ``axis`` out)."""
  ablation = _ablation(preset, axis)
  if ablation is None:
    return []
  varied = [g for g in _varied(groups, preset, axis)
            if g.key["batch_size"] == preset.batch_size
            and g.key["resolution"] is None]
  cells = []
  present = {g.key["backbone"] for g in varied}
  for backbone in [b for b in preset.backbones if b in present]:
    for dataset in ablation.datasets:
      found = {}
      for g in select(varied, backbone=backbone, dataset=dataset,
                      shots=ablation.shots):
        value = _value(g, axis, implied)
        if value in ablation.values:
          found[value] = g
      if len(found) >= 2:
        cells.append((backbone, dataset, found))
  return cells


def criterion_table(groups: Sequence[Group], preset) -> str:
  ablation = _ablation(preset, "criterion")
  if ablation is None:
    return ""
  values = list(ablation.values)
  rows = []
  for backbone, dataset, found in _ablation_cells(groups, preset,
                                                  "criterion"):
    accs = {v: g.stats["accuracy"] for v, g in found.items()}
    means = [accs[v].mean for v in values if v in accs]
    ordered = all(a > b for a, b in zip(means, means[1:]))
    paired = [_paired(found.get(a), found.get(b))
              for a, b in zip(values, values[1:])]
    rows.append([f"`{backbone}`", dataset] + [
        report.fmt_acc(accs[v]) if v in accs else "–" for v in values]
                + paired + [_yes(ordered and len(means) == len(values))])
  if not rows:
    return "_Needs the criterion ablation's results._"
  return report.table(
      ["Backbone", "Dataset"] + [f"{v} (%)" for v in values] +
      [f"{a} − {b} (pp, paired)" for a, b in zip(values, values[1:])] +
      [" > ".join(values) + " (target)"], rows)


def allocation_table(groups: Sequence[Group], preset) -> str:
  """Accuracy, measured arena and trained parameters of each allocation on
  the same cells and budget; the first value against the second, paired."""
  return _pair_table(groups, preset, "allocation", implied="greedy")


def learning_rate_table(groups: Sequence[Group], preset) -> str:
  """TinyTrain at each step size of the step-size ablation on the same
  cells and selections; the first against the second, paired."""
  return _pair_table(groups, preset, LEARNING_RATE_AXIS)


def _pair_table(groups, preset, axis, implied=None) -> str:
  """The first two values of ``axis``'s ablation side by side: accuracy,
  measured arena and trained parameters, and their paired difference."""
  ablation = _ablation(preset, axis)
  if ablation is None:
    return ""
  first, second = list(ablation.values)[:2]
  rows = []
  for backbone, dataset, found in _ablation_cells(
      groups, preset, axis, implied=implied):
    row = [f"`{backbone}`", dataset]
    for value in (first, second):
      g = found.get(value)
      row += (["–"] * 3 if g is None else [
          report.fmt_acc(g.stats["accuracy"]),
          _kb(g.stats["arena_bytes"].mean),
          report.fmt_int(g.stats["trainable_params"])])
    rows.append(row + [_paired(found.get(first), found.get(second))])
  if not rows:
    return f"_Needs the {axis.replace('_', ' ')} ablation's results._"
  name = _value_label(axis)
  return report.table(
      ["Backbone", "Dataset"] + [
          f"{name(v)} {what}" for v in (first, second)
          for what in ("acc. (%)", "arena (KB)", "trainable params")]
      + [f"{name(first)} − {name(second)} (pp, paired)"], rows)


def _value_label(axis):
  if axis == LEARNING_RATE_AXIS:
    return lambda value: f"step {value:g}"
  return str


def _paired(first: Group, second: Group) -> str:
  """Mean ± sample s.d. over the shared seeds of ``first - second``'s
  accuracy (pp): both ran on each seed's same few-shot draw and head, so
  the draw's own difficulty cancels."""
  if first is None or second is None:
    return "–"
  a, b = first.accuracy_of(), second.accuracy_of()
  diffs = [100 * (a[s] - b[s]) for s in sorted(set(a) & set(b))]
  if not diffs:
    return "–"
  stat = Stat.of(diffs)
  spread = "" if stat.n < 2 else f" ± {stat.std:.1f}"
  return f"{stat.mean:+.1f}{spread}"


def budget_table(groups: Sequence[Group], preset, backbone: str,
                 dataset: str) -> str:
  ablation = _ablation(preset, "memory_budget")
  varied = [g for g in _varied(groups, preset, "memory_budget")
            if g.key["backbone"] == backbone and g.key["dataset"] == dataset
            and g.key["batch_size"] == preset.batch_size
            and g.key["shots"] == ablation.shots]
  varied.sort(key=lambda g: _options(g)["memory_budget"])
  main = _main_groups(groups, preset)
  cell = select(main, backbone=backbone, dataset=dataset, shots=ablation.shots)
  last_arena = _stat(cell, "ft_last", "arena_bytes")
  rows = []
  for g in varied:
    arena = g.stats["arena_bytes"]
    extra = (arena.mean - last_arena.mean
             if last_arena is not None and arena.n and last_arena.n
             else math.nan)
    rows.append([f"{_options(g)['memory_budget'] / 1024:g}",
                 report.fmt_acc(g.stats["accuracy"]),
                 _kb(g.stats["selection_modelled_bytes"].mean),
                 _kb(arena.mean), _kb(extra),
                 report.fmt_int(g.stats["trainable_params"]),
                 report.fmt_s(g.stats["rewrite_time_s"])])
  for method in ("ft_last", "tinytl_b", "tinytl_lb", "ft_full",
                 "sparse_update"):
    found = select(cell, method=method)
    if found:
      arena = found[0].stats["arena_bytes"]
      extra = (arena.mean - last_arena.mean
               if last_arena is not None and arena.n and last_arena.n
               else math.nan)
      rows.append([report.method_label(method),
                   report.fmt_acc(found[0].stats["accuracy"]), "–",
                   _kb(arena.mean), _kb(extra),
                   report.fmt_int(found[0].stats["trainable_params"]),
                   report.fmt_s(found[0].stats["rewrite_time_s"])])
  if not varied:
    return "_Needs the memory-budget ablation's results._"
  return report.table(
      ["Budget (KiB) / method", "Acc. (%)",
       "Training state (KB, modelled)", "TFLM arena (KB, measured)",
       "Arena beyond FT-Last (KB, measured)", "Trainable params",
       "Rewrite + selection (s)"], rows)


def _budget_groups(groups, preset):
  """Every method's main groups plus TinyTrain at every budget (its curve)."""
  main = _main_settings(groups, preset)
  others = [g for g in main if g.key["method"] != TINYTRAIN]
  return others + _varied(groups, preset, "memory_budget")


def figures(groups: Sequence[Group], preset, out_dir: str,
            stem: str) -> List[str]:
  """Accuracy against measured arena (main grid; budget sweep)."""
  if not select(groups, method=TINYTRAIN):
    return []
  written = []
  main = _main_settings(groups, preset)
  ablation = _ablation(preset, "memory_budget")
  for backbone in report.ordered_unique(g.key["backbone"] for g in groups):
    for shots in preset.shots:
      path = os.path.join(out_dir, f"{stem}_{backbone}{FIGURE_TAG}arena_"
                          f"{'full' if shots is None else f'{shots}shot'}.png")
      if plot.plot_accuracy_vs_memory(main, path, batch_size=preset.batch_size,
                                      shots=shots, backbone=backbone,
                                      metric="arena_bytes"):
        written.append(path)
    if ablation is not None:
      sweep = [g for g in _budget_groups(groups, preset)
               if g.key["dataset"] in ablation.datasets]
      path = os.path.join(out_dir, f"{stem}_{backbone}{FIGURE_TAG}budget.png")
      if plot.plot_accuracy_vs_memory(
          sweep, path, batch_size=preset.batch_size, shots=ablation.shots,
          backbone=backbone, metric="arena_bytes", title="budget sweep"):
        written.append(path)
  return written


def sections(groups: Sequence[Group], preset, figure_paths: Sequence[str],
             figure_dir: str) -> List[str]:
  """Markdown parts of the sparse-update sections (empty without runs)."""
  if not select(groups, method=TINYTRAIN):
    return []
  backbones = report.ordered_unique(g.key["backbone"] for g in groups)
  options = "; ".join(
      f"`{b}`: " + ", ".join(f"`{k}={v}`" for k, v in sorted(
          _main_options(preset, b).items()))
      + f", step {preset.learning_rate_of(b, TINYTRAIN):g}"
      for b in backbones)
  parts = [
      "#### Sparse update: TinyTrain against TinyTL-L+B and FT-Full",
      f"TinyTrain's options in the main grid: {options} (`memory_budget`: "
      "training state beyond inference, modelled). "
      + (preset.options_note + " " if preset.options_note else "")
      + "Arenas measured (TFLM recording allocator) for the lowered train "
      "step at the same batch. Accuracy is host training.",
      targets_table(groups, preset),
  ]
  criterion = criterion_table(groups, preset)
  if criterion:
    parts += ["#### Sparse update: channel criterion (same layers, same "
              "budget)", criterion]
  allocation = allocation_table(groups, preset)
  if allocation:
    parts += ["#### Sparse update: allocation of the budget (same budget; "
              "`marginal`: the most Fisher potential per unit of budget, "
              "`greedy`: TinyTrain's layers in score order)", allocation]
  steps = learning_rate_table(groups, preset)
  if steps:
    parts += ["#### Sparse update: step size (same selections; Adam, "
              f"{preset.epochs} epochs)", steps]
  ablation = _ablation(preset, "memory_budget")
  if ablation is not None:
    for backbone in backbones:
      for dataset in ablation.datasets:
        parts += [f"#### Sparse update: memory budget ({dataset}, "
                  f"{report.shots_label(ablation.shots)}, backbone "
                  f"`{backbone}`)", budget_table(groups, preset, backbone,
                                                 dataset)]
  for path in figure_paths:
    if is_sparse_figure(path):
      parts.append(f"![accuracy against measured arena]"
                   f"({os.path.relpath(path, figure_dir)})")
  return parts


__all__ = ["figures", "is_sparse_figure", "sections"]
