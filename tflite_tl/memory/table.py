"""TinyTL's Table 2 memory column, recomputed from a real model.

Each method of :mod:`tflite_tl.rewrite.methods` is applied to the model and
its training memory is modelled with :func:`training_memory`; nothing is
taken from constants except the paper's figures printed beside ours.
"""
import json
from typing import Dict, Optional, Sequence

from tflite_tl._compat import keras
from tflite_tl.memory.training_memory import training_memory
from tflite_tl.rewrite import methods as methods_lib

# TinyTL (Cai et al., NeurIPS 2020) Table 2, ProxylessNAS-Mobile, 224 px,
# batch 8, training memory in MB.
TINYTL_TABLE2_MB: Dict[str, float] = {
    "ft_full": 391.0, "ft_last": 31.0, "ft_norm_last": 192.0,
    "tinytl_b": 32.0, "tinytl_l": 37.0, "tinytl_lb": 37.0,
}
TABLE2_ORDER = ("ft_full", "ft_last", "ft_norm_last", "tinytl_b", "tinytl_l",
                "tinytl_lb")
PAPER_LABELS = {"ft_full": "FT-Full", "ft_last": "FT-Last",
                "ft_norm_last": "FT-Norm+Last", "tinytl_b": "TinyTL-B",
                "tinytl_l": "TinyTL-L", "tinytl_lb": "TinyTL-L+B"}
# The class count TinyTL's profiler ran with: its training script's default
# dataset, Flowers102.
TINYTL_NUM_CLASSES = 102


def lite_norm_options(norm: str) -> Dict[str, Dict[str, object]]:
  """Per-method options selecting the lite residual branch's norm."""
  return {"tinytl_l": {"norm": norm}, "tinytl_lb": {"norm": norm}}


def method_report(model: keras.Model, name: str, batch_size: int,
                  num_classes: Optional[int], **options):
  """The full MemoryReport of ``model`` rewritten for method ``name``.

  Returns:
    ``(rewritten model, MemoryReport)``.
  """
  rewritten = methods_lib.apply_method(model, name, num_classes=num_classes,
                                       **options)
  return rewritten, training_memory(rewritten, batch_size=batch_size)


def method_memory_table(
    model: keras.Model, batch_size: int, num_classes: Optional[int],
    methods: Sequence[str] = TABLE2_ORDER,
    method_options: Optional[Dict[str, Dict[str, object]]] = None,
) -> Dict[str, object]:
  """Modelled training memory of ``model`` under each method.

  Args:
    model: the pretrained model (not modified).
    batch_size: training batch size.
    num_classes: classes of the new classifier (None keeps the model's).
    methods: registered method names.
    method_options: per-method options for ``apply_method``, e.g.
      ``{"tinytl_l": {"norm": "batch"}}``.

  Returns:
    ``{"figures": "modelled (analytic)", "model", "batch_size",
    "num_classes", "methods": {name: summary + paper_mb + relative_error}}``
    with MB = 10**6 bytes.
  """
  rows = {}
  for name in methods:
    rewritten, memory_report = method_report(
        model, name, batch_size, num_classes,
        **(method_options or {}).get(name, {}))
    summary = memory_report.summary()
    del summary["model"], summary["figures"], summary["batch_size"]
    paper = TINYTL_TABLE2_MB.get(name)
    summary["trainable_params"] = int(sum(
        int(w.shape.num_elements()) for w in rewritten.trainable_weights))
    if paper is not None:
      summary["paper_mb"] = paper
      summary["relative_error"] = round(summary["total_mb"] / paper - 1, 4)
    rows[name] = summary
  return {"figures": "modelled (analytic)", "model": model.name,
          "input_shape": list(model.input_shape[1:]),
          "batch_size": batch_size, "num_classes": num_classes,
          "mb": "10**6 bytes", "methods": rows}


def to_json(table: Dict[str, object]) -> str:
  return json.dumps(table, indent=2, sort_keys=True)


def to_markdown(table: Dict[str, object]) -> str:
  """Our modelled figures beside TinyTL's Table 2."""
  shape = "x".join(str(d) for d in table["input_shape"])
  lines = [
      f"Training memory, {table['model']} {shape}, batch "
      f"{table['batch_size']}, {table['num_classes']} classes; ours modelled "
      "(analytic), MB = 10^6 bytes.",
      "",
      "| Method | Trainable params | Activations (MB) | Params (MB) "
      "| Ours (MB) | TinyTL paper (MB) | Difference |",
      "|---|---:|---:|---:|---:|---:|---:|"]
  for name, row in table["methods"].items():
    label = PAPER_LABELS.get(name, name)
    paper = row.get("paper_mb")
    paper_cell = f"{paper:.0f}" if paper is not None else "-"
    diff = (f"{100 * row['relative_error']:+.1f} %" if paper is not None
            else "-")
    lines.append(
        f"| {label} (`{name}`) | {row['trainable_params']:,} "
        f"| {row['activation_mb']:.1f} | {row['param_mb']:.1f} "
        f"| {row['total_mb']:.1f} | {paper_cell} | {diff} |")
  return "\n".join(lines)


__all__ = ["TINYTL_TABLE2_MB", "TABLE2_ORDER", "TINYTL_NUM_CLASSES",
           "method_memory_table", "to_json", "to_markdown"]
