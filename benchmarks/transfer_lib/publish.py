"""Turns a results file into the published artefacts: markdown and plots.

``publish`` writes, for one preset's results:

- ``<out_dir>/<stem>_<backbone>_<shots>.png``: accuracy against training
  memory, one panel per dataset, one figure per shot setting;
- ``<out_dir>/<stem>.md``: the whole report (tables, targets, ablations,
  figure links);
- optionally the same report as a marked section of another markdown file
  (``BENCHMARKS.md``), leaving the rest of that file untouched.
"""
import os
from typing import List, Optional, Sequence

from benchmarks.transfer_lib import aggregate, plot, precision_report, report
from benchmarks.transfer_lib import tinytrain_report
from benchmarks.transfer_lib.presets import (LEARNING_RATE_AXIS, OPTION_AXES,
                                           Preset)
from tflite_tl import atomic

SECTION = "transfer-benchmarks"


def _shots_slug(shots: Optional[int]) -> str:
  return "full" if shots is None else f"{shots}shot"


def render(records: Sequence[dict], preset: Preset, figures: Sequence[str],
           figure_dir: str, command: str) -> str:
  """The markdown report of ``records`` (figures linked relative to the
  report's directory, ``figure_dir``)."""
  groups = aggregate.group_records(records)
  bs = preset.batch_size
  parts = [
      f"### Transfer learning: accuracy against training memory "
      f"(preset `{preset.name}`)",
      f"Produced by `{command}` ({len(records)} runs). Accuracy is the mean ± "
      "sample standard deviation over seeds on the dataset's test split; "
      "*train memory* is the analytic TinyTL model "
      "(`tflite_tl.memory.training_memory`: peak stored activations × batch "
      "+ parameters), *TFLM arena* the arena the lowered train step "
      "(`tflite_tl.lower`) actually allocates in the TFLite-Micro interpreter "
      "at the same batch. Wall time is per run on a shared 2-core machine "
      "(inflated by other jobs).",
      report.results_tables(groups, bs, preset.main_options,
                             preset.learning_rate_of),
      "#### Targets: TinyTL-L+B against FT-Full and FT-Last",
      report.targets_table(groups, bs, preset.main_options,
                            preset.learning_rate_of),
  ]
  parts += precision_report.section(groups, bs)
  for path in figures:
    if tinytrain_report.is_sparse_figure(path):
      continue  # shown in the sparse-update sections
    parts.append(f"![accuracy against training memory]"
                 f"({os.path.relpath(path, figure_dir)})")
  backbones = report.ordered_unique(g.key["backbone"] for g in groups)
  for ablation in preset.ablations:
    if ablation.axis in OPTION_AXES + (LEARNING_RATE_AXIS,):
      continue  # method-option and step ablations: in the sparse sections
    for backbone in backbones:
      for dataset in ablation.datasets:
        where = dict(backbone=backbone, dataset=dataset, shots=ablation.shots)
        if ablation.axis == "batch_size":
          where["resolution"] = None
          label = lambda v: f"batch {v}"  # pylint: disable=unnecessary-lambda-assignment
        else:
          where["batch_size"] = bs
          label = lambda v: "native" if v is None else f"{v} px"  # pylint: disable=unnecessary-lambda-assignment
        parts.append(f"#### Ablation: {ablation.axis.replace('_', ' ')} "
                     f"({dataset}, {report.shots_label(ablation.shots)}, "
                     f"backbone `{backbone}`)")
        parts.append(report.ablation_table(groups, ablation.axis, where,
                                           label))
  parts += tinytrain_report.sections(groups, preset, figures, figure_dir)
  return "\n\n".join(parts) + "\n"


def publish(records: Sequence[dict], preset: Preset, out_dir: str, stem: str,
            command: str, section_path: Optional[str] = None) -> List[str]:
  """Writes the figures and the report; returns the paths written."""
  os.makedirs(out_dir, exist_ok=True)
  groups = aggregate.group_records(records)
  written = []
  backbones = report.ordered_unique(g.key["backbone"] for g in groups)
  shots = report.ordered_unique(g.key["shots"] for g in groups)
  for backbone in backbones:
    for k in shots:
      path = os.path.join(out_dir, f"{stem}_{backbone}_{_shots_slug(k)}.png")
      if plot.plot_accuracy_vs_memory(
          report.drop_option_ablations(groups, preset.main_options,
                                       preset.learning_rate_of), path,
          batch_size=preset.batch_size, shots=k, backbone=backbone):
        written.append(path)
  written += tinytrain_report.figures(groups, preset, out_dir, stem)
  markdown_path = os.path.join(out_dir, f"{stem}.md")
  text = render(records, preset, written, out_dir, command)
  atomic.write_file(markdown_path, text)
  written.append(markdown_path)
  if section_path:
    section_dir = os.path.dirname(os.path.abspath(section_path))
    text = render(records, preset, [p for p in written if p.endswith(".png")],
                  section_dir, command)
    report.write_section(section_path, f"{SECTION}:{preset.name}", text)
    written.append(section_path)
  return written
