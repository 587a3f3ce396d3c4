"""The channel-axis comparison of benchmarks.channel_axis (its CLI): the
same layers and fraction of channels on the input and on the output axis,
with the memory model's bytes (modelled) and the train step's TFLM arena
(measured)."""
import math
from typing import Dict, List

import numpy as np

import tflite_tl as tl
from tflite_tl import tflm
from tflite_tl.lower import lower_model
from tflite_tl.rewrite import sparse_methods
from tflite_tl.sparse import cost as cost_lib
from tflite_tl.sparse import criteria
from tflite_tl.sparse import fisher
from tflite_tl.sparse import inventory as inventory_lib
from tflite_tl.sparse.select import build_selection

AXES = (cost_lib.INPUT, cost_lib.OUTPUT)


def _conv_layers(inventory) -> List[str]:
  return [n for n in inventory.candidates if inventory[n].kind == "conv"]


def axis_rows(model_name: str, resolution: int, batch: int, fraction: float,
              dataset: str, shots: int, seed: int,
              kernels: str = "builtin") -> List[Dict]:
  """One row per axis: layers, channels, modelled and measured bytes."""
  data = tl.load_dataset(dataset, resolution=resolution, channels=1,
                         seed=seed, max_per_class=shots)
  images = np.asarray(data.x_train, np.float32)
  labels = np.asarray(data.y_train)
  backbone = tl.load_pretrained(model_name, resolution=resolution)
  prepared = sparse_methods.prepare(backbone, data.num_classes, seed)
  inventory = inventory_lib.model_inventory(prepared)
  layers = _conv_layers(inventory)
  rows = []
  for axis in AXES:
    model_cost = cost_lib.CostModel(inventory, batch, 0.0, axis)
    axes = {n: model_cost.axis(n) for n in layers}
    potentials = fisher.channel_potentials(prepared, images, labels, axes)
    chosen = {n: max(1, math.ceil(fraction * model_cost.channels(n)))
              for n in layers}
    rankings = {n: list(criteria.rank_channels(
        criteria.FISHER, channels=model_cost.channels(n),
        potentials=potentials[n], kernel=None, channel_axis=axes[n],
        seed=seed, layer_index=i)) for i, n in enumerate(layers)}
    selection = build_selection(
        method="tinytrain", criterion=criteria.FISHER, model_cost=model_cost,
        chosen=chosen, rankings=rankings, bias_layers=(), seed=seed,
        potentials=potentials)
    model = tl.apply_method(backbone, "tinytrain",
                            num_classes=data.num_classes, seed=seed,
                            selection=selection)
    lowered = lower_model(model, batch_size=batch, learning_rate=0.01,
                          kernels=kernels)
    arena = tflm.measure_arena(lowered.train_tflite)
    rows.append({
        "axis": axis, "layers": len(layers),
        "channels": sum(len(c.channels) for c in selection.layers),
        "total_channels": sum(c.total_channels for c in selection.layers),
        "stored_bytes": sum(c.stored_bytes for c in selection.layers),
        "param_bytes": sum(c.param_bytes for c in selection.layers),
        "modelled_bytes": selection.modelled_bytes,
        "weight_grad_macs": sum(c.weight_grad_macs for c in selection.layers),
        "arena": arena.total, "head": arena.head, "tail": arena.tail})
  return rows


def format_rows(rows: List[Dict]) -> str:
  lines = ["| axis | layers | channels trained | kept activations B "
           "(modelled) | trained kernel B | training state B (modelled) | "
           "kernel-gradient MACs | train arena B (measured: head / tail) |",
           "|---|---:|---:|---:|---:|---:|---:|---|"]
  for r in rows:
    lines.append(
        f"| {r['axis']} | {r['layers']} | {r['channels']} of "
        f"{r['total_channels']} | {r['stored_bytes']:,} | "
        f"{r['param_bytes']:,} | {r['modelled_bytes']:,} | "
        f"{r['weight_grad_macs']:,} | {r['arena']:,} ({r['head']:,} / "
        f"{r['tail']:,}) |")
  return "\n".join(lines)
