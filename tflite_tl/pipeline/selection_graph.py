"""The export's ``fisher.tflite``: TinyTrain's selection pass for the board.

Lowered from the exported model (after the host fine-tune) over every
candidate layer of the selection, at the train step's batch size and
precision; checked in TFLM against the TF reference on the user's support
set (potentials and the channel ranking they give), and its arena measured.
"""
import time
from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from tflite_tl import tflm
from tflite_tl._compat import keras
from tflite_tl.lower import fisher_graph
from tflite_tl.sparse.selection import Selection
from tflite_tl.verify import train_step

FILE = "fisher.tflite"
# Relative error of TFLM's potentials against TF's that still counts as the
# same pass (float32 sums in another order; measured <= 4e-7 on the tests'
# models).
TOLERANCE = 1e-4
# TF reference runs on images perturbed by one float32 ulp, as the train
# step's parity does (tflite_tl.verify.train_step): a potential that moves
# by more than TOLERANCE under such noise is ill-conditioned (a sum of a*g
# that cancels, a ReLU tie), and TFLM matching one of those runs is the
# same pass computed with other roundings.
PERTURBED_REFERENCES = 4


def _perturbed(images: np.ndarray, draw: int) -> np.ndarray:
  rs = np.random.RandomState(1000 + draw)
  return (images * (1.0 + train_step.ULP_PERTURBATION * rs.choice(
      [-1.0, 1.0], images.shape))).astype(np.float32)


def _rel_err(got: Mapping[str, np.ndarray], want: Mapping[str, np.ndarray],
             layers: Sequence[str]) -> Tuple[float, Optional[str]]:
  """Worst over ``layers`` of max|got - want| / max|want|, and its layer."""
  worst, worst_layer = 0.0, None
  for name in layers:
    scale = float(np.max(np.abs(want[name]))) or 1.0
    err = float(np.max(np.abs(np.asarray(got[name], np.float64)
                              - want[name]))) / scale
    if err > worst:
      worst, worst_layer = err, name
  return worst, worst_layer


def compare_potentials(got: Mapping[str, np.ndarray],
                       want: Mapping[str, np.ndarray],
                       perturbed: Sequence[Mapping[str, np.ndarray]],
                       layers: Sequence[str],
                       tolerance: float = TOLERANCE) -> dict:
  """TFLM's potentials ``got`` against TF's ``want`` and TF's on
  ulp-perturbed inputs: ``parity`` "exact" (within ``tolerance`` of
  ``want``), "within_rounding" (within it of a perturbed run, where TF's
  own spread exceeds it) or "failed"; the errors; whether every layer's
  channel ranking is TF's."""
  worst, worst_layer = _rel_err(got, want, layers)
  sensitivity = max((_rel_err(p, want, layers)[0] for p in perturbed),
                    default=0.0)
  nearest = min((_rel_err(got, p, layers)[0] for p in perturbed),
                default=worst)
  if worst <= tolerance:
    parity = "exact"
  elif sensitivity > tolerance and (nearest <= tolerance
                                    or worst <= sensitivity):
    # TFLM sits on one of TF's perturbed runs, or no farther from TF than
    # TF is from itself under 1-ulp noise: the potentials are that
    # ill-conditioned, and TFLM computes the same ones.
    parity = "within_rounding"
  else:
    parity = "failed"
  same_ranking = all(
      list(np.argsort(-np.asarray(got[n]), kind="stable"))
      == list(np.argsort(-np.asarray(want[n]), kind="stable"))
      for n in layers)
  return {"parity": parity, "max_rel_err": worst, "worst_layer": worst_layer,
          "reference_sensitivity": sensitivity,
          "nearest_perturbed_rel_err": nearest,
          "same_ranking": bool(same_ranking)}


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

  def reference(x):
    with fisher_graph.reference_weights(model, precision):
      sums = fisher_graph.run_reference(model, axes, x, labels, batch_size)
    return {n: v / (2.0 * usable) for n, v in sums.items()}

  want = reference(images)
  # The perturbed runs are only needed when TFLM misses TF's own.
  perturbed = ([] if _rel_err(got, want, graph.layers)[0] <= TOLERANCE
               else [reference(_perturbed(images, k))
                     for k in range(PERTURBED_REFERENCES)])
  agreement = compare_potentials(got, want, perturbed, graph.layers)
  if agreement["parity"] == "failed":
    raise ValueError(
        f"{FILE}: TFLM's Fisher potentials differ from TF's by "
        f"{agreement['max_rel_err']:.1e} (relative) at layer "
        f"'{agreement['worst_layer']}', and by "
        f"{agreement['nearest_perturbed_rel_err']:.1e} from the nearest of "
        f"{PERTURBED_REFERENCES} TF runs on 1-ulp-perturbed images (TF's "
        f"own spread: {agreement['reference_sensitivity']:.1e}).")
  worst = agreement["max_rel_err"]
  same_order = agreement["same_ranking"]
  return graph.tflite, {
      "file": FILE, "bytes": len(graph.tflite),
      "layers": list(graph.layers), "axes": [axes[n] for n in graph.layers],
      "batch_size": batch_size, "support_images": usable,
      "precision": "int8" if precision == "int8" else "float",
      "arena_bytes": int(run.arena.total),
      "max_rel_err": worst, "same_ranking": bool(same_order),
      "parity": agreement["parity"],
      "reference_sensitivity": agreement["reference_sensitivity"],
      "nearest_perturbed_rel_err": agreement["nearest_perturbed_rel_err"],
      "host_seconds": round(seconds, 1),
  }
