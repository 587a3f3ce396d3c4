"""The export's ``fisher.tflite``: TinyTrain's selection pass for the board.

Lowered from the exported model (after the host fine-tune) over every
candidate layer of the selection, at the train step's batch size and
precision; checked in TFLM against the TF reference on the user's support
set (potentials and the channel ranking they give), and its arena measured.
"""
import time
from typing import Dict, Tuple

import numpy as np

from tflite_tl import tflm
from tflite_tl._compat import keras
from tflite_tl.lower import fisher_graph
from tflite_tl.sparse.selection import Selection

FILE = "fisher.tflite"
# Relative error of TFLM's potentials against TF's that still counts as the
# same pass (float32 sums in another order; measured <= 4e-7 on the tests'
# models).
TOLERANCE = 1e-4


def candidate_axes(model: keras.Model, selection: Selection
                   ) -> Dict[str, str]:
  """{candidate layer: channel axis}: every layer the selection scored, on
  the axis its choice uses (a depthwise layer's channels; the selection's
  conv axis, input when it chose no conv)."""
  conv_axis = next((c.channel_axis for c in selection.layers
                    if c.kind != "depthwise"), "input")
  axes = {}
  for name, _ in selection.layer_potentials:
    layer = model.get_layer(name)
    depthwise = "depthwise_kernel" in {w.name.split("/")[-1].split(":")[0]
                                       for w in layer.weights} or isinstance(
                                           layer,
                                           keras.layers.DepthwiseConv2D)
    axes[name] = "channels" if depthwise else conv_axis
  return axes


def build(model: keras.Model, selection: Selection, support, *,
          batch_size: int, precision: str) -> Tuple[bytes, dict]:
  """``fisher.tflite`` and its report entry (``precision``: "int8" stores
  frozen kernels int8 as the builtin int8 step does).

  Raises:
    tflm.TflmRuntimeError: TFLM cannot run it.
    ValueError: TFLM's potentials disagree with TF's.
  """
  images, labels = support
  usable = len(images) - len(images) % batch_size
  if usable == 0:
    raise ValueError(f"The support set ({len(images)} images) is smaller "
                     f"than the batch ({batch_size}).")
  images, labels = images[:usable], np.asarray(labels[:usable], np.int32)
  axes = candidate_axes(model, selection)
  start = time.perf_counter()
  graph = fisher_graph.lower_fisher(model, axes, batch_size=batch_size,
                                    precision="int8" if precision == "int8"
                                    else "float")
  steps = [graph.inputs(images[i:i + batch_size], labels[i:i + batch_size])
           for i in range(0, usable, batch_size)]
  run = tflm.run_model(graph.tflite, steps, measure_arena=True,
                       backend="wheel")
  sums = {n: sum(out[k].astype(np.float64) for out in run.outputs)
          for k, n in enumerate(graph.layers)}
  got = graph.potentials(sums, usable)
  seconds = time.perf_counter() - start
  with fisher_graph.reference_weights(model, precision):
    want = fisher_graph.run_reference(model, axes, images, labels,
                                      batch_size)
  want = {n: s / (2.0 * usable) for n, s in want.items()}
  worst, worst_layer = 0.0, None
  for name in graph.layers:
    scale = float(np.max(np.abs(want[name]))) or 1.0
    err = float(np.max(np.abs(got[name] - want[name]))) / scale
    if err > worst:
      worst, worst_layer = err, name
  if worst > TOLERANCE:
    raise ValueError(f"{FILE}: TFLM's Fisher potentials differ from TF's by "
                     f"{worst:.1e} (relative) at layer '{worst_layer}'.")
  same_order = all(
      list(np.argsort(-got[n], kind="stable"))
      == list(np.argsort(-want[n], kind="stable")) for n in graph.layers)
  return graph.tflite, {
      "file": FILE, "bytes": len(graph.tflite),
      "layers": list(graph.layers), "axes": [axes[n] for n in graph.layers],
      "batch_size": batch_size, "support_images": usable,
      "precision": "int8" if precision == "int8" else "float",
      "arena_bytes": int(run.arena.total),
      "max_rel_err": worst, "same_ranking": bool(same_order),
      "host_seconds": round(seconds, 1),
  }
