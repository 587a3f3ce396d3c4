"""On-device re-selection in the exported App (host build against TFLM from
$TFLM_ROOT): `F` runs fisher.tflite over the stored samples and picks the
channels the host picks from the same samples; `T` then trains them."""
import dataclasses

import numpy as np
import pytest

import tflite_tl as tl
from tflite_tl import devices
from tflite_tl import flatbuffer
from tflite_tl import lower
from tflite_tl import tflm
from tflite_tl.firmware import host_app
from tflite_tl.firmware import instruction_counts
from tflite_tl.firmware import package
from tflite_tl.firmware import reselect_tables
from tflite_tl.lower import fisher_graph
from tflite_tl.lower import quantize
from tflite_tl.pipeline import selection_graph
from tflite_tl.sparse import criteria
from tflite_tl.tflm.runner import train_inputs_order

RESOLUTION = 16
CLASSES = 4
SAMPLES_PER_CLASS = 4
BATCH = 2
# Small enough that TinyTrain trains a few channels of a few layers.
MEMORY_BUDGET = 12000
EPOCHS = 12


def _pixels(images):
  """What the App holds of float images: 8-bit pixels, back as floats."""
  return np.clip(np.rint(images * 255.0), 0, 255) / np.float32(255.0)


@pytest.fixture(scope="module")
def case():
  ds = tl.load_dataset("animal_mnist", resolution=RESOLUTION, channels=1,
                       seed=0)
  x, y = np.asarray(ds.x_test, np.float32), np.asarray(ds.y_test)
  rng = np.random.default_rng(0)
  export, device = [], []
  for c in range(CLASSES):
    idx = rng.permutation(np.flatnonzero(y == c))
    export += list(idx[:SAMPLES_PER_CLASS])
    device += list(idx[SAMPLES_PER_CLASS:2 * SAMPLES_PER_CLASS])
  device = rng.permutation(device)
  backbone = tl.load_pretrained("tiny", resolution=RESOLUTION)
  # The export's choice comes from one support set; the board re-selects
  # on another (a new task's samples).
  model = tl.apply_method(backbone, "tinytrain", num_classes=CLASSES,
                          support=(x[export], y[export]), batch_size=BATCH,
                          memory_budget=MEMORY_BUDGET)
  selection = tl.rewrite.selection_of(model)
  lowered = lower.lower_model(model, batch_size=BATCH, learning_rate=0.05,
                              variable_channels=True)
  axes = selection_graph.candidate_axes(model, selection)
  fisher = fisher_graph.lower_fisher(model, axes, batch_size=BATCH)
  int8 = quantize.quantize_int8(model, x[export])
  train_info = flatbuffer.model_info(lowered.train_tflite)
  tables = reselect_tables.reselect_tables(
      lowered.train_tflite, train_info.variables, fisher.tflite,
      fisher.layers, tflm.measure_arena(fisher.tflite).total,
      reselect_tables.full_kernels(model))
  images_idx, labels_idx = train_inputs_order(lowered.train_tflite)
  spec = package.BuildSpec(
      name="tiny_reselect", model_name="tiny", method="tinytrain",
      device=devices.get_device("nano33ble"),
      train_tflite=lowered.train_tflite,
      predict_tflite=lowered.predict_tflite, infer_int8_tflite=int8,
      train_info=train_info,
      predict_info=flatbuffer.model_info(lowered.predict_tflite),
      infer_int8_info=flatbuffer.model_info(int8),
      train_images_input=images_idx, train_labels_input=labels_idx,
      batch_size=BATCH, image_shape=(RESOLUTION, RESOLUTION, 1),
      class_names=tuple(f"class{i}" for i in range(CLASSES)),
      arena=package.shared_arena_bytes(
          tflm.measure_arena(lowered.train_tflite),
          tflm.measure_arena(lowered.predict_tflite)),
      max_samples=CLASSES * SAMPLES_PER_CLASS, reselect=tables)
  package.check_variables(spec)
  return spec, model, selection, axes, fisher, x[device], y[device]


def _host_choice(tables, sums, samples):
  """Top K channels of each layer by potential, sorted (the host's rule)."""
  out = {}
  for entry in tables.layers:
    potentials = np.asarray(sums[entry.layer], np.float64) / (2 * samples)
    ranked = criteria.rank_channels("fisher", channels=entry.channels,
                                    potentials=potentials)
    out[entry.layer] = sorted(int(c) for c in ranked[:entry.chosen])
  return out


# With the samples in flash, 'F' reads each from the flash store (slow: the
# host App's flash mode is CI's in test_firmware_host_app.py).
@pytest.mark.parametrize("samples", [
    "ram", pytest.param("flash", marks=pytest.mark.slow)])
def test_the_board_reselects_like_the_host_and_trains(tflm_root, tmp_path,
                                                      case, samples):
  del tflm_root
  spec, model, selection, axes, fisher, images, labels = case
  spec = dataclasses.replace(spec, sample_storage=samples)
  tables = spec.reselect
  src = instruction_counts.library_dir(spec, tmp_path / "export")
  exe = host_app.build_host_app(src, tmp_path / "tl_host_app")
  with host_app.AppSession(exe, tmp_path / "flash.bin") as app:
    assert app.summary()[2].startswith("reselect: yes")
    for image, label in zip(images, labels):
      app.add_sample(image, label)
    chosen = app.reselect()
    losses = app.train(EPOCHS)
    assert app.reselect() == chosen  # the same samples, the same choice
  seen = _pixels(images)
  # The host on the same samples: TFLM (the wheel) and the TF reference.
  steps = [fisher.inputs(seen[i:i + BATCH], labels[i:i + BATCH])
           for i in range(0, len(seen), BATCH)]
  run = tflm.run_model(fisher.tflite, steps, backend="wheel")
  tflm_sums = {n: sum(out[k].astype(np.float64) for out in run.outputs)
               for k, n in enumerate(fisher.layers)}
  tf_sums = fisher_graph.run_reference(model, axes, seen, labels, BATCH)
  exported = {c.layer: list(c.channels) for c in selection.layers
              if c.layer in chosen}
  print(f"exported {exported}; re-selected {chosen}; loss {losses[0]:.4f} "
        f"-> {losses[-1]:.4f}")
  assert set(chosen) == {l.layer for l in tables.layers}
  assert chosen == _host_choice(tables, tflm_sums, len(seen))
  assert chosen == _host_choice(tables, tf_sums, len(seen))
  assert losses[-1] < losses[0]


def test_an_export_without_it_says_why(case):
  spec, *_ = case
  off = dataclasses.replace(spec, reselect=None,
                            reselect_unavailable="kernel flavor")
  files = package.package_files(off)
  root = f"arduino/{off.name}/src/"
  assert "#define TLTL_RESELECT 0" in files[root + "tl_reselect_config.h"]
  assert root + "tl_fisher_model_data.h" not in files
  assert off.arena_bytes <= spec.arena_bytes
  ram, flash = package.memory_consumers(spec)
  # fisher.tflite's own bytes; its constants are in the shared pool.
  fisher_at = [m.data for m in spec.embedded_models].index(
      spec.reselect.fisher_tflite)
  assert flash["fisher.tflite graph"] == spec.model_image.lengths[fisher_at]
  assert flash["fisher.tflite graph"] <= len(spec.reselect.fisher_tflite)
  assert ram["re-selection sums"] == spec.reselect.ram_bytes
  assert spec.arena_bytes == max(package.board_arena_bytes(spec.arena),
                                 spec.reselect_arena_bytes)
