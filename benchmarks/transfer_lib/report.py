"""Markdown reports of a sweep: results tables, targets, ablations.

All text is a function of the result records alone (no dates, no host
names), so the same results file always gives the same report. Sizes are in
KB of 1024 bytes.
"""
import math
import os
from typing import Dict, Iterable, List, Optional, Sequence

from benchmarks.transfer_lib.aggregate import Group, Stat, select
from benchmarks.transfer_lib import plan
from benchmarks.transfer_lib.plan import Lowering
from tflite_tl import atomic

#: Methods in the order of the TinyTL paper's tables, with their paper names.
METHOD_LABELS = {
    "ft_full": "FT-Full",
    "ft_last": "FT-Last",
    "ft_norm_last": "FT-Norm+Last",
    "tinytl_b": "TinyTL-B",
    "tinytl_l": "TinyTL-L",
    "tinytl_lb": "TinyTL-L+B",
    "sparse_update": "SparseUpdate",
    "tinytrain": "TinyTrain",
}

#: The targets the methods are held against (TinyTL paper, Table 2 / Fig. 4).
TARGET_MAX_GAP_TO_FULL_PP = 2.0
TARGET_MIN_MEMORY_SAVING = 6.0
TARGET_MIN_GAIN_OVER_LAST_PP = 5.0
#: int8 training with QAS against float (tiny-training, Lin et al. 2022).
TARGET_MAX_INT8_GAP_PP = 1.0


def method_label(method: str) -> str:
  return METHOD_LABELS.get(method, method)


def lowering_of(group: Group) -> Lowering:
  """The lowering of a group (the default one when its key names none)."""
  key = group.key
  return Lowering(key.get("kernels", "builtin"), key.get("precision", "float"),
                  bool(key.get("qas", True)))


def row_label(group: Group) -> str:
  """The method's paper name, with the lowering unless it is the default."""
  low = lowering_of(group)
  label = method_label(group.key["method"])
  return label if low.is_default else f"{label} ({low.label})"


def method_order(methods: Iterable[str]) -> List[str]:
  """The given methods, paper order first, unknown ones sorted after."""
  present = set(methods)
  known = [m for m in METHOD_LABELS if m in present]
  return known + sorted(present - set(known))


def ordered_unique(values: Iterable) -> list:
  out = []
  for v in values:
    if v not in out:
      out.append(v)
  return out


def fmt_acc(stat: Stat) -> str:
  if stat.n == 0:
    return "–"
  if math.isnan(stat.std):
    return f"{100 * stat.mean:.1f}"
  return f"{100 * stat.mean:.1f} ± {100 * stat.std:.1f}"


def fmt_kb(stat: Stat) -> str:
  return "–" if stat.n == 0 else f"{stat.mean / 1024:,.1f}"


def fmt_int(stat: Stat) -> str:
  return "–" if stat.n == 0 else f"{stat.mean:,.0f}"


def fmt_s(stat: Stat) -> str:
  return "–" if stat.n == 0 else f"{stat.mean:.1f}"


def shots_label(shots: Optional[int]) -> str:
  return "full training split" if shots is None else f"{shots}-shot"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
  align = ["---"] + ["---:"] * (len(header) - 1)
  lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
  lines += ["| " + " | ".join(row) + " |" for row in rows]
  return "\n".join(lines)


def options_key(options: Optional[Dict]) -> tuple:
  """Method options as they appear in a group's key."""
  return plan.canonical_options(options)


table = _table  # the markdown table layout, for the other report modules


def has_main_options(group: Group, main_options=None,
                     learning_rate_of=None) -> bool:
  """Whether ``group`` ran its method with the main grid's options (and,
  given ``learning_rate_of``, its step size).

  ``main_options``: {method: options} for every backbone, or a function of
  the backbone returning that (``Preset.main_options``); none by default.
  ``learning_rate_of(backbone, method)``: the main grid's step size
  (``Preset.learning_rate_of``); without it any step size is the main one.
  """
  if callable(main_options):
    main_options = main_options(group.key["backbone"])
  options = (main_options or {}).get(group.key["method"])
  if group.key.get("method_options", ()) != options_key(options):
    return False
  return learning_rate_of is None or has_main_step(group, learning_rate_of)


def has_main_step(group: Group, learning_rate_of) -> bool:
  """Whether ``group`` ran at the main grid's step size of its method and
  backbone (``learning_rate_of(backbone, method)``)."""
  return math.isclose(
      float(group.key["learning_rate"]),
      learning_rate_of(group.key["backbone"], group.key["method"]))


def main_groups(groups: Sequence[Group], batch_size: int,
                main_options=None, learning_rate_of=None) -> List[Group]:
  """The main grid: the given batch size at each backbone's own resolution,
  each method with its main-grid options and step size
  (``has_main_options``)."""
  return [g for g in groups
          if g.key["batch_size"] == batch_size and g.key["resolution"] is None
          and has_main_options(g, main_options, learning_rate_of)]


def drop_option_ablations(groups: Sequence[Group], main_options=None,
                          learning_rate_of=None) -> List[Group]:
  """The groups whose method options and step size are their method's
  main-grid ones (method-option and step-size ablations dropped; every
  other axis kept)."""
  return [g for g in groups
          if has_main_options(g, main_options, learning_rate_of)]


def results_tables(groups: Sequence[Group], batch_size: int,
                   main_options=None, learning_rate_of=None) -> str:
  """One table per backbone, dataset and shot setting: methods as rows."""
  main = main_groups(groups, batch_size, main_options, learning_rate_of)
  parts = []
  for backbone in ordered_unique(g.key["backbone"] for g in main):
    for dataset in ordered_unique(g.key["dataset"] for g in main):
      for shots in ordered_unique(g.key["shots"] for g in main):
        cell = select(main, backbone=backbone, dataset=dataset, shots=shots)
        if not cell:
          continue
        full = select(cell, method="ft_full")
        full_mem = full[0].stats["training_memory_bytes"].mean if full else None
        rows = []
        for method in method_order(g.key["method"] for g in cell):
          for g in select(cell, method=method):
            mem = g.stats["training_memory_bytes"]
            saving = ("–" if not full_mem or mem.n == 0 or not mem.mean
                      else f"{full_mem / mem.mean:.1f}×")
            rows.append([row_label(g), fmt_acc(g.stats["accuracy"]),
                         fmt_kb(mem), saving, fmt_kb(g.stats["arena_bytes"]),
                         fmt_int(g.stats["trainable_params"]),
                         fmt_s(g.stats["wall_time_s"]),
                         str(g.stats["accuracy"].n)])
        parts.append(
            f"**{dataset}**, {shots_label(shots)} (backbone `{backbone}`, "
            f"batch {batch_size}, {cell[0].key['epochs']} epochs)\n\n" +
            _table(["Method", "Top-1 acc. (%)", "Train memory (KB, model)",
                    "vs FT-Full", "TFLM arena (KB, measured)",
                    "Trainable params", "Wall time (s)", "Seeds"], rows))
  return "\n\n".join(parts) if parts else "_No results yet._"


def target_rows(groups: Sequence[Group], batch_size: int,
                main_options=None, learning_rate_of=None) -> List[Dict]:
  """TinyTL-L+B against FT-Full and FT-Last, per backbone/dataset/shots."""
  main = main_groups(groups, batch_size, main_options, learning_rate_of)
  out = []
  for backbone in ordered_unique(g.key["backbone"] for g in main):
    for dataset in ordered_unique(g.key["dataset"] for g in main):
      for shots in ordered_unique(g.key["shots"] for g in main):
        cell = select(main, backbone=backbone, dataset=dataset, shots=shots)
        for low in ordered_unique(lowering_of(g) for g in cell):
          row = _target_row([g for g in cell if lowering_of(g) == low])
          if row is not None:
            out.append(dict(row, backbone=backbone, dataset=dataset,
                            shots=shots, lowering=low))
  return out


def _target_row(cell: Sequence[Group]) -> Optional[Dict]:
  """The target figures of one lowering's groups, if it has all three."""
  lb, full, last = (select(cell, method=m)
                    for m in ("tinytl_lb", "ft_full", "ft_last"))
  if not (lb and full and last):
    return None
  lb, full, last = lb[0].stats, full[0].stats, last[0].stats
  gap_full = 100 * (lb["accuracy"].mean - full["accuracy"].mean)
  gain_last = 100 * (lb["accuracy"].mean - last["accuracy"].mean)
  saving = (full["training_memory_bytes"].mean
            / lb["training_memory_bytes"].mean)
  arena_saving = (full["arena_bytes"].mean / lb["arena_bytes"].mean
                  if lb["arena_bytes"].n and full["arena_bytes"].n
                  else math.nan)
  return dict(
      gap_to_full_pp=gap_full, gain_over_last_pp=gain_last,
      memory_saving=saving, arena_saving=arena_saving,
      accuracy_met=gap_full >= -TARGET_MAX_GAP_TO_FULL_PP,
      memory_met=saving >= TARGET_MIN_MEMORY_SAVING,
      over_last_met=gain_last >= TARGET_MIN_GAIN_OVER_LAST_PP)


def targets_table(groups: Sequence[Group], batch_size: int,
                  main_options=None, learning_rate_of=None) -> str:
  rows = []
  for t in target_rows(groups, batch_size, main_options, learning_rate_of):
    yes = lambda ok: "met" if ok else "**missed**"  # pylint: disable=unnecessary-lambda-assignment
    arena = ("–" if math.isnan(t["arena_saving"])
             else f"{t['arena_saving']:.1f}×")
    low = "" if t["lowering"].is_default else f" ({t['lowering'].label})"
    rows.append([f"`{t['backbone']}`{low}", t["dataset"],
                 shots_label(t["shots"]),
                 f"{t['gap_to_full_pp']:+.1f} ({yes(t['accuracy_met'])})",
                 f"{t['memory_saving']:.1f}× ({yes(t['memory_met'])})", arena,
                 f"{t['gain_over_last_pp']:+.1f} ({yes(t['over_last_met'])})"])
  if not rows:
    return "_Needs TinyTL-L+B, FT-Full and FT-Last results._"
  return _table(
      ["Backbone", "Dataset", "Shots",
       f"L+B − Full (pp, target ≥ −{TARGET_MAX_GAP_TO_FULL_PP:g})",
       f"Memory saving vs Full (model, target ≥ {TARGET_MIN_MEMORY_SAVING:g}×)",
       "Arena saving vs Full (measured)",
       f"L+B − Last (pp, target ≥ +{TARGET_MIN_GAIN_OVER_LAST_PP:g})"], rows)


def ablation_table(groups: Sequence[Group], axis: str, where: Dict,
                   label=str) -> str:
  """Methods as rows, the values of ``axis`` as columns (acc. and memory).

  Args:
    groups: all groups of the sweep.
    axis: the configuration field that varies (``batch_size``,
      ``resolution``).
    where: fixed fields selecting the ablation (e.g. dataset and shots, and
      ``resolution=None`` for the batch ablation).
    label: formats an axis value for the header.
  """
  cell = select(groups, **where)

  def position(value):
    # ``resolution=None`` means the backbone's own size: place it by the
    # resolution the runs actually used.
    px = [g.stats["resolution_px"].mean for g in select(cell, **{axis: value})
          if g.stats["resolution_px"].n]
    return (px[0] if px and value is None else (value or 0))

  values = sorted(ordered_unique(g.key[axis] for g in cell), key=position)
  if len(values) < 2:
    return f"_Needs results at two or more values of {axis}._"
  header = ["Method"]
  for v in values:
    header += [f"acc. (%) @ {label(v)}", f"memory (KB) @ {label(v)}"]
  rows = []
  for method in method_order(g.key["method"] for g in cell):
    row = [method_label(method)]
    for v in values:
      g = select(cell, method=method, **{axis: v})
      if g:
        row += [fmt_acc(g[0].stats["accuracy"]),
                fmt_kb(g[0].stats["training_memory_bytes"])]
      else:
        row += ["–", "–"]
    rows.append(row)
  return _table(header, rows)


def write_section(path: str, name: str, markdown: str) -> None:
  """Puts ``markdown`` between this section's markers in ``path``.

  The markers are ``<!-- BEGIN <name> -->`` and ``<!-- END <name> -->``; text
  outside them is kept as it is. A missing section is appended, a missing
  file is created.
  """
  begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
  block = f"{begin}\n{markdown.rstrip()}\n{end}"
  text = ""
  if os.path.exists(path):
    with open(path, encoding="utf-8") as f:
      text = f.read()
  if begin in text and end in text:
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    text = head + block + tail
  elif begin in text or end in text:
    raise ValueError(f"{path}: found only one of the markers {begin!r} and "
                     f"{end!r}; restore the other or remove both.")
  else:
    text = (text.rstrip() + "\n\n" if text.strip() else "") + block + "\n"
  atomic.write_file(path, text)
