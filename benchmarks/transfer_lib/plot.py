"""Accuracy against training memory, one panel per dataset (TinyTL Fig. 4 style).

Each method is one colour and marker; its points are its results at each input
resolution in the sweep, joined by a line (one point when only the backbone's
own resolution was run), with the seed standard deviation as error bars. The
x axis is the modelled training memory on a log scale, so a method further
left trains in less memory.

Output is deterministic: the Agg backend and no PNG metadata (matplotlib would
otherwise stamp its version), so the same records give the same bytes.
"""
import math
from typing import Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after selecting the backend)
from matplotlib import ticker  # noqa: E402

from benchmarks.transfer_lib.aggregate import Group, select  # noqa: E402
from benchmarks.transfer_lib.report import (method_order, ordered_unique,  # noqa: E402
                                            method_label, shots_label)
from benchmarks import plotting  # noqa: E402
from tflite_tl import atomic  # noqa: E402

_STYLES = {
    "ft_full": ("tab:red", "s"),
    "ft_last": ("tab:gray", "v"),
    "ft_norm_last": ("tab:orange", "D"),
    "tinytl_b": ("tab:green", "^"),
    "tinytl_l": ("tab:purple", "P"),
    "tinytl_lb": ("tab:blue", "o"),
    "sparse_update": ("tab:brown", "X"),
    "tinytrain": ("tab:olive", "*"),
}
#: What the x axis can show: the modelled training memory or the measured
#: TFLM arena of the lowered train step.
X_METRICS = {"training_memory_bytes": "training memory (KB, model, log scale)",
             "arena_bytes": "TFLM arena (KB, measured, log scale)"}



def _minor_label(value, _):
  """Labels minor log ticks at 2, 3 and 5 × 10^k only: labelling every one
  makes 700/800/900 run into each other."""
  if value <= 0:
    return ""
  leading = round(value / 10 ** math.floor(math.log10(value) + 1e-9))
  return f"{value:,.0f}" if leading in (2, 3, 5) else ""

def figure_accuracy_vs_memory(groups: Sequence[Group], *, batch_size: int,
                              shots: Optional[int],
                              backbone: Optional[str] = None,
                              metric: str = "training_memory_bytes",
                              title: Optional[str] = None):
  """The figure for one shot setting, or None when there is nothing to
  plot; the caller closes it.

  ``metric`` (a key of ``X_METRICS``) is the x axis; a method's points at
  several settings (resolutions, budgets) are joined in order of it.
  """
  where = dict(batch_size=batch_size, shots=shots)
  if backbone is not None:
    where["backbone"] = backbone
  cell = select(groups, **where)
  datasets = ordered_unique(g.key["dataset"] for g in cell)
  if not datasets:
    return None
  cols = min(len(datasets), 4)
  rows = math.ceil(len(datasets) / cols)
  fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.6 * rows),
                           squeeze=False)
  for ax, dataset in zip(axes.flat, datasets):
    in_panel = select(cell, dataset=dataset)
    for method in method_order(g.key["method"] for g in in_panel):
      points = [g for g in select(in_panel, method=method)
                if g.stats[metric].n]
      points.sort(key=lambda g: g.stats[metric].mean)
      if not points:
        continue
      colour, marker = _STYLES.get(method, ("black", "x"))
      xs = [g.stats[metric].mean / 1024 for g in points]
      ys = [100 * g.stats["accuracy"].mean for g in points]
      es = [0.0 if math.isnan(g.stats["accuracy"].std)
            else 100 * g.stats["accuracy"].std for g in points]
      ax.errorbar(xs, ys, yerr=es, color=colour, marker=marker, markersize=6,
                  linewidth=1.2, capsize=2, label=method_label(method))
    ax.set_xscale("log")
    # Plain KB numbers: the range is often less than a decade, where the
    # default 2×10^2 labels are hard to read.
    plain = ticker.FuncFormatter(lambda v, _: f"{v:,.0f}")
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(ticker.FuncFormatter(_minor_label))
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_title(f"{dataset} ({shots_label(shots)})" + (
        f": {title}" if title else ""), fontsize=10)
    ax.set_xlabel(X_METRICS[metric])
    ax.set_ylabel("top-1 accuracy (%)")
    ax.grid(True, which="both", linewidth=0.3, alpha=0.5)
  for ax in list(axes.flat)[len(datasets):]:
    ax.axis("off")
  legend = {}
  for ax in axes.flat:
    for handle, label in zip(*ax.get_legend_handles_labels()):
      legend.setdefault(label, handle)
  plotting.place_legend(fig, list(legend.values()), list(legend))
  return fig


def plot_accuracy_vs_memory(groups: Sequence[Group], path: str, *,
                            batch_size: int, shots: Optional[int],
                            backbone: Optional[str] = None,
                            metric: str = "training_memory_bytes",
                            title: Optional[str] = None) -> int:
  """Writes the figure for one shot setting to ``path`` (PNG), atomically.

  Returns:
    The number of panels drawn (0 writes nothing).
  """
  fig = figure_accuracy_vs_memory(groups, batch_size=batch_size, shots=shots,
                                  backbone=backbone, metric=metric,
                                  title=title)
  if fig is None:
    return 0
  try:
    panels = sum(1 for ax in fig.axes if ax.axison)
    with atomic.replacing(path) as tmp:
      fig.savefig(tmp, format="png", dpi=110, metadata={"Software": None})
  finally:
    plt.close(fig)
  return panels
