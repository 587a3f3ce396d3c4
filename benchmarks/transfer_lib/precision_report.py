"""Report section: int8 training (with and without QAS) against float.

Shown when a sweep holds runs of more than one precision (``--preset=int8``).
Each row is one method on one dataset; each lowering's accuracy is the mean
± sample std over seeds, and the gaps are differences of those means. The
target (tiny-training, Lin et al. 2022) is int8 with QAS within
``TARGET_MAX_INT8_GAP_PP`` of float; int8 without QAS should be visibly
worse where the trained parameters are int8 ones.
"""
import math
from typing import List, Optional, Sequence

from benchmarks.transfer_lib import report
from benchmarks.transfer_lib.aggregate import Group, Stat, select
from benchmarks.transfer_lib.plan import Lowering

TITLE = "#### int8 training (QAS, no QAS) against float"


def _lowerings(groups: Sequence[Group]) -> List[Lowering]:
  """Float first, then int8 QAS, then int8 without QAS."""
  found = report.ordered_unique(report.lowering_of(g) for g in groups)
  return sorted(found, key=lambda l: (l.precision != "float", not l.qas,
                                      l.kernels))


def _accuracy(cell: Sequence[Group], method: str,
              lowering: Lowering) -> Optional[Stat]:
  for g in select(cell, method=method):
    if report.lowering_of(g) == lowering:
      return g.stats["accuracy"]
  return None


def _arena(cell: Sequence[Group], method: str,
           lowering: Lowering) -> Optional[Stat]:
  for g in select(cell, method=method):
    if report.lowering_of(g) == lowering:
      return g.stats["arena_bytes"]
  return None


def _gap(a: Optional[Stat], b: Optional[Stat]) -> float:
  if a is None or b is None or not a.n or not b.n:
    return math.nan
  return 100 * (a.mean - b.mean)


def _pp(value: float) -> str:
  return "–" if math.isnan(value) else f"{value:+.1f}"


def section(groups: Sequence[Group], batch_size: int) -> List[str]:
  """The section's markdown parts; empty unless two precisions are present."""
  groups = [g for g in groups if g.key["batch_size"] == batch_size
            and g.key["resolution"] is None]
  lowerings = _lowerings(groups)
  floats = [l for l in lowerings if l.precision == "float"]
  int8s = [l for l in lowerings if l.precision == "int8"]
  if not floats or not int8s:
    return []
  base = floats[0]
  parts = [TITLE, (
      f"Accuracy (%) on the test split, mean ± std over seeds; host "
      f"training in each lowering's arithmetic: float with "
      f"`tflite_tl.train.fit`, int8 with the device's own step "
      f"(`tflite_tl.lower.tl.host_training.fit_int8`: TFLM's integer forward "
      f"pass, float backward, scales calibrated on the run's training "
      f"images), so the int8 columns describe what the board's train step "
      f"does. Gaps are against `{base.label}`; target: int8 QAS within "
      f"{report.TARGET_MAX_INT8_GAP_PP:g} pp of float. Arena: the train "
      f"step's, measured (TFLM recording allocator).")]
  gaps = {l: [] for l in int8s}
  for backbone in report.ordered_unique(g.key["backbone"] for g in groups):
    for shots in report.ordered_unique(g.key["shots"] for g in groups):
      cell = select(groups, backbone=backbone, shots=shots)
      if not cell:
        continue
      header = ["Dataset", "Method"] + [f"{l.label} (%)" for l in lowerings]
      header += [f"{l.label} − {base.label} (pp)" for l in int8s]
      header += [f"arena {l.label} (KB)" for l in lowerings]
      rows = []
      for dataset in report.ordered_unique(g.key["dataset"] for g in cell):
        here = select(cell, dataset=dataset)
        for method in report.method_order(g.key["method"] for g in here):
          accs = [_accuracy(here, method, l) for l in lowerings]
          row = [dataset, report.method_label(method)]
          row += [report.fmt_acc(a) if a else "–" for a in accs]
          reference = _accuracy(here, method, base)
          for l in int8s:
            gap = _gap(_accuracy(here, method, l), reference)
            gaps[l].append(gap)
            row.append(_pp(gap))
          row += [report.fmt_kb(a) if a else "–"
                  for a in (_arena(here, method, l) for l in lowerings)]
          rows.append(row)
      parts.append(f"Backbone `{backbone}`, {report.shots_label(shots)}, "
                   f"batch {batch_size}, {cell[0].key['epochs']} epochs, "
                   f"{cell[0].key['optimizer']} lr "
                   f"{cell[0].key['learning_rate']:g}\n\n"
                   + report.table(header, rows))
  summary = []
  for l in int8s:
    values = [v for v in gaps[l] if not math.isnan(v)]
    if not values:
      continue
    mean = sum(values) / len(values)
    line = (f"- {l.label} − {base.label}: mean {mean:+.1f} pp over "
            f"{len(values)} method/dataset cells (worst {min(values):+.1f}, "
            f"best {max(values):+.1f})")
    if l.qas:
      met = mean >= -report.TARGET_MAX_INT8_GAP_PP
      line += (f"; target within {report.TARGET_MAX_INT8_GAP_PP:g} pp: "
               f"{'met' if met else '**missed**'} on the mean, met in "
               f"{sum(v >= -report.TARGET_MAX_INT8_GAP_PP for v in values)}"
               f" of {len(values)} cells")
    summary.append(line + ".")
  if summary:
    parts.append("\n".join(summary))
  return parts
