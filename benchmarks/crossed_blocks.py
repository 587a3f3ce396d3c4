r"""Train-step arena with and without fusing the frozen blocks a backward
crosses, measured.

One TinyTrain selection (the ``selection`` of an export's report.json, e.g.
the Nano 33 BLE export's) applied to a shipped backbone, lowered int8 with
the tl kernels: once as the lowering does it (every frozen inverted-residual
block one TL_INVERTED_RESIDUAL, with mask outputs where the backward crosses
it, and their backward one TL_INVERTED_RESIDUAL_INPUT_GRAD), once with that
backward as the three-op chain TL_CONV_INPUT_GRAD -> TL_DEPTHWISE_INPUT_GRAD
-> TL_CONV_INPUT_GRAD it replaces, and once with the crossed blocks left
unfused (three builtins and TL_RELU_MASK ops each). For each: the
train step's arena (TFLM recording allocator), its op counts and the
20-step parity against the TF reference.

  TFLM_ROOT=... python -m benchmarks.crossed_blocks \
      --selection=benchmarks/results/nano33ble_tinytrain_selection.json

(that file: the selection of the Nano 33 BLE TinyTrain export, MobileNetV2,
96 px, samples in flash; its output: benchmarks/results/crossed_blocks.txt).
"""
import contextlib
import json
from unittest import mock

from absl import app
from absl import flags
import numpy as np

from tflite_tl.lower import lower_model
from tflite_tl.lower.builtins import op_counts
from tflite_tl.lower.tl import inverted_residual
from tflite_tl.pipeline.backbone import load_backbone
from tflite_tl.rewrite.methods import apply_method
from tflite_tl.sparse.selection import Selection
from tflite_tl.tflm import measure_arena
from tflite_tl.verify import train_step as ts

FLAGS = flags.FLAGS
flags.DEFINE_string("selection", None, "A JSON file with a 'selection' "
                    "entry, e.g. an export's report.json.", required=True)
flags.DEFINE_string("model", "mobilenet_v2", "Shipped backbone.")
flags.DEFINE_integer("resolution", 96, "Input side (px).")
flags.DEFINE_integer("num_classes", 10, "Classes of the new head.")
flags.DEFINE_integer("steps", 20, "Train steps of the parity check.")
flags.DEFINE_integer("seed", 0, "Seed of the random batches.")

_OPS = ("CUSTOM:TL_INVERTED_RESIDUAL", "CONV_2D", "DEPTHWISE_CONV_2D",
        "CUSTOM:TL_RELU_MASK", "CUSTOM:TL_INVERTED_RESIDUAL_INPUT_GRAD",
        "CUSTOM:TL_CONV_INPUT_GRAD", "CUSTOM:TL_DEPTHWISE_INPUT_GRAD")


@contextlib.contextmanager
def crossed_blocks_unfused():
  """The lowering as it was before: only blocks no gradient crosses fuse."""
  find = inverted_residual.find_blocks

  def uncrossed(graph, policy):
    return {k: b for k, b in find(graph, policy).items() if not b.crossed}

  with mock.patch.object(inverted_residual, "find_blocks", uncrossed):
    yield


def measure(model, batches, fuse_crossed: bool,
            fused_backward: bool = True) -> dict:
  """Arena, op counts and parity of ``model``'s int8 tl train step."""
  calibration = np.concatenate([x for x, _ in batches])
  with (contextlib.nullcontext() if fuse_crossed
        else crossed_blocks_unfused()), mock.patch.object(
            inverted_residual, "_FUSED_BACKWARD", fused_backward):
    lowered = lower_model(model, batch_size=int(batches[0][0].shape[0]),
                          learning_rate=0.01, kernels="tl", precision="int8",
                          calibration_images=calibration)
  arena = measure_arena(lowered.train_tflite)
  ops = op_counts(lowered.train_tflite)
  parity = ts.compare(lowered, batches, arena=False, perturbed_references=1)
  return {"arena": arena, "ops": {k: ops.get(k, 0) for k in _OPS},
          "parity": parity["parity"],
          "loss_err": parity["max_rel_err_loss"],
          "params_err": parity["max_rel_err_params"]}


def format_row(name: str, r: dict) -> str:
  a = r["arena"]
  ops = ", ".join(f"{k.replace('CUSTOM:', '')} {v}"
                  for k, v in r["ops"].items())
  return (f"{name}: train arena total {a.total} B, head {a.head} B, tail "
          f"{a.tail} B (persistent buffer data "
          f"{a.breakdown['Persistent buffer data']} B); {ops}; parity "
          f"{r['parity']} (loss {r['loss_err']:.1e}, params "
          f"{r['params_err']:.1e})")


def main(argv):
  del argv
  with open(FLAGS.selection) as f:
    selection = Selection.from_dict(json.load(f)["selection"])
  backbone, _ = load_backbone(FLAGS.model, True, FLAGS.resolution)
  model = apply_method(backbone, "tinytrain", num_classes=FLAGS.num_classes,
                       selection=selection)
  batches = ts.random_batches(FLAGS.seed, FLAGS.steps, 1,
                              tuple(int(d) for d in model.inputs[0].shape[1:]),
                              FLAGS.num_classes)
  print(f"{FLAGS.model}, {FLAGS.resolution} px, int8, tl kernels, batch 1; "
        "selection: " + ", ".join(f"{c.layer} {len(c.channels)}/"
                                  f"{c.total_channels}"
                                  for c in selection.layers))
  print(format_row("crossed blocks unfused (before)",
                   measure(model, batches, fuse_crossed=False)))
  print(format_row("crossed blocks fused, three-op backward",
                   measure(model, batches, fuse_crossed=True,
                           fused_backward=False)))
  print(format_row("crossed blocks fused, fused backward",
                   measure(model, batches, fuse_crossed=True)))


if __name__ == "__main__":
  app.run(main)
