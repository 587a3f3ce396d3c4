r"""On-device re-selection of an export, in its App built for the host.

Builds the export's serial App against TFLM (``TFLM_ROOT``; arena of
exactly ``kArenaBytes``), stores ``--shots`` images per class of
``--dataset`` (a new task), sends ``F`` and compares each layer's new
channels with the host's choice on the same 8-bit samples (fisher.tflite
in the TFLM wheel, top K by potential); then ``T`` trains. Prints the
agreement, how many channels moved from the export's choice, the loss, and
the re-selection's cost from report.json (measured arenas, flash).

  python -m export --method=tinytrain --kernels=builtin --precision=float \
      --memory_budget=32768 --out=/tmp/tt_sparse
  TFLM_ROOT=... python -m benchmarks.reselect_on_device --export=/tmp/tt_sparse
"""
import json
import pathlib
import tempfile
import time

import numpy as np
from absl import app
from absl import flags

import tflite_tl as tl
from tflite_tl import tflm
from tflite_tl.firmware import host_app
from tflite_tl.flatbuffer import reader
from tflite_tl.sparse import criteria

FLAGS = flags.FLAGS
flags.DEFINE_string("export", None, "Directory of a TinyTrain export with "
                    "on-device re-selection.", required=True)
flags.DEFINE_string("dataset", "digits", "The new task's dataset.")
flags.DEFINE_integer("shots", 2, "Stored images per class.", lower_bound=1)
flags.DEFINE_integer("epochs", 5, "Epochs of 'T' after 'F'.", lower_bound=1)
flags.DEFINE_integer("seed", 0, "Seed of the samples.")


def host_choice(fisher: bytes, layers, chosen_k, images, labels):
  """{layer: top-K channels, sorted} from fisher.tflite in the TFLM wheel."""
  names = [i.name for i in reader.inputs(fisher)]
  batch = int(reader.inputs(fisher)[0].shape[0])
  steps = []
  for i in range(0, len(images) - len(images) % batch, batch):
    by_kind = {"images": images[i:i + batch].astype(np.float32),
               "labels": labels[i:i + batch].astype(np.int32)}
    steps.append([by_kind["labels" if "labels" in n else "images"]
                  for n in names])
  run = tflm.run_model(fisher, steps, backend="wheel")
  out = {}
  for k, layer in enumerate(layers):
    if layer not in chosen_k:
      continue
    sums = sum(o[k].astype(np.float64) for o in run.outputs)
    ranked = criteria.rank_channels("fisher", channels=len(sums),
                                    potentials=sums / (2 * len(steps) * batch))
    out[layer] = sorted(int(c) for c in ranked[:chosen_k[layer]])
  return out


def run(export: pathlib.Path, dataset: str, shots: int, epochs: int,
        seed: int) -> dict:
  report = json.loads((export / "report.json").read_text())
  on_device = report["selection_pass"]["on_device"]
  if not on_device["available"]:
    raise SystemExit(f"{export}: no on-device re-selection "
                     f"({on_device['why']}).")
  name = report["config"]["name"]
  res, channels = report["config"]["resolution"], report["data"]["channels"]
  ds = tl.load_dataset(dataset, resolution=res, channels=channels, seed=seed)
  x, y = np.asarray(ds.x_test, np.float32), np.asarray(ds.y_test)
  rng = np.random.default_rng(seed)
  classes = min(ds.num_classes, report["data"]["num_classes"])
  pick = rng.permutation(np.concatenate(
      [rng.permutation(np.flatnonzero(y == c))[:shots]
       for c in range(classes)]))
  images, labels = x[pick], y[pick]
  seen = np.clip(np.rint(images * 255.0), 0, 255) / np.float32(255.0)
  train = (export / "train.tflite").read_bytes()
  shapes = {v.shared_name: int(np.prod(v.shape))
            for v in reader.variables(train)}
  # Layers that train some of their channels (K < C): the ones F moves.
  chosen_k = {n[:-len("/channels")]: k for n, k in shapes.items()
              if n.endswith("/channels")
              and k < shapes[n[:-len("/channels")] + "/channel_slots"]}
  sizes = {n: shapes[n + "/channel_slots"] for n in chosen_k}
  exported = {n: [int(c) for c in reader.initial_values(train)[
      n + "/channels"]] for n in chosen_k}
  with tempfile.TemporaryDirectory(prefix="tflite_tl_reselect_") as tmp:
    exe = host_app.build_host_app(export / "arduino" / name / "src",
                                  pathlib.Path(tmp) / "tl_host_app")
    with host_app.AppSession(exe, pathlib.Path(tmp) / "flash.bin") as s:
      for image, label in zip(images, labels):
        s.add_sample(image, label)
      start = time.perf_counter()
      board = s.reselect()
      seconds = time.perf_counter() - start
      losses = s.train(epochs)
  host = host_choice((export / "fisher.tflite").read_bytes(),
                     report["selection_pass"]["layers"], chosen_k, seen,
                     labels)
  return {"board": board, "host": host, "exported": exported,
          "sizes": sizes, "samples": len(images), "losses": losses,
          "f_host_seconds": seconds, "on_device": on_device}


def main(argv):
  del argv
  r = run(pathlib.Path(FLAGS.export), FLAGS.dataset, FLAGS.shots,
          FLAGS.epochs, FLAGS.seed)
  print(f"{r['samples']} samples of {FLAGS.dataset}; F took "
        f"{r['f_host_seconds']:.2f} s on the host")
  print("| layer | K of C | exported | board (F) | host (TFLM wheel) | "
        "agree | moved |")
  print("|---|---|---|---|---|---|---|")
  agree = 0
  for layer, host in r["host"].items():
    board = r["board"].get(layer)
    moved = len(set(host) - set(r["exported"][layer]))
    agree += board == host
    print(f"| {layer} | {len(host)} of {r['sizes'][layer]} | "
          f"{r['exported'][layer]} | {board} | {host} | "
          f"{'yes' if board == host else 'NO'} | {moved} |")
  print(f"{agree} of {len(r['host'])} layers agree; loss after F: "
        f"{r['losses'][0]:.4f} -> {r['losses'][-1]:.4f} over "
        f"{len(r['losses'])} epochs")
  o = r["on_device"]
  print(f"cost: fisher.tflite {o['flash_bytes']:,} B flash, arena "
        f"{o['arena_bytes']:,} B (train + predict "
        f"{o['train_predict_arena_bytes']:,} B, board "
        f"{o['board_arena_bytes']:,} B), RAM +{o['ram_added_bytes']:,} B")


if __name__ == "__main__":
  app.run(main)
