import ast
import filecmp
import json
import os
import shutil
import subprocess
import sys

import pytest

from tflite_tl import devices
from tflite_tl import atomic
from tflite_tl.firmware import fit
from tflite_tl import pipeline

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cfg(tmp_path, **kw):
  base = dict(out=str(tmp_path / "out"), model="tiny", finetune_epochs=0,
              device_epochs=1,
              samples_per_class=5, calibration_images=5, verify_steps=1,
              verify_images=5)
  base.update(kw)
  return pipeline.ExportConfig(**base)


@pytest.mark.parametrize("kw, error, message", [
    ({"device": "uno"}, devices.UnknownDeviceError, "Unknown device 'uno'"),
    ({"method": "magic"}, pipeline.ExportError, "Unknown method 'magic'"),
    ({"model": "resnet9000"}, pipeline.ExportError,
     "Unknown model 'resnet9000'"),
    ({"dataset": "imagenet"}, pipeline.ExportError,
     "Unknown dataset 'imagenet'"),
    ({"name": "my-lib"}, pipeline.ExportError, "C identifier"),
    ({"device": "nano33ble", "arena_in_external_ram": True},
     devices.DeviceProfileError, "no PSRAM"),
])
def test_bad_inputs_fail_before_any_work(tmp_path, kw, error, message):
  with pytest.raises(error, match=message):
    pipeline.run_export(_cfg(tmp_path, **kw))
  assert not os.path.exists(tmp_path / "out")


def test_refuses_to_overwrite_a_foreign_directory(tmp_path):
  out = tmp_path / "out"
  out.mkdir()
  (out / "notes.txt").write_text("keep me")
  with pytest.raises(atomic.OutputExistsError, match="--out.*not a tflite-tl output"):
    pipeline.run_export(_cfg(tmp_path))
  assert (out / "notes.txt").read_text() == "keep me"


def test_missing_dataset_folder_writes_nothing(tmp_path):
  with pytest.raises((FileNotFoundError, ValueError)):
    pipeline.run_export(_cfg(tmp_path,
                             dataset=f"folder:{tmp_path / 'no_such_dir'}"))
  assert not os.path.exists(tmp_path / "out")


def test_cli_unknown_device_exits_nonzero_and_writes_nothing(tmp_path):
  out = tmp_path / "out"
  proc = subprocess.run([sys.executable, "-m", "export", f"--out={out}",
                         "--device=uno"], cwd=ROOT, capture_output=True,
                        text=True)
  assert proc.returncode == 1
  assert "Unknown device 'uno'" in proc.stderr and "nano33ble" in proc.stderr
  assert not out.exists()


def _only_tools(tmp_path, *names):
  """A PATH directory holding just ``names`` (links to the real tools)."""
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  for name in names:
    os.symlink(shutil.which(name), bin_dir / name)
  return str(bin_dir)


def test_instruction_counts_name_everything_missing(tmp_path, monkeypatch):
  monkeypatch.delenv("TFLM_ROOT", raising=False)
  monkeypatch.setenv("PATH", _only_tools(tmp_path))
  with pytest.raises(pipeline.ExportError) as e:
    pipeline.run_export(_cfg(tmp_path, instruction_counts=True))
  msg = str(e.value)
  assert "\n" not in msg
  assert msg.startswith("--instruction_counts needs TFLM_ROOT, "
                        "arm-none-eabi-gcc, qemu-system-arm; missing: "
                        "TFLM_ROOT (a tflite-micro source tree); "
                        "arm-none-eabi-gcc (Debian gcc-arm-none-eabi")
  assert "; qemu-system-arm (Debian qemu-system-arm)." in msg
  assert "export without --instruction_counts" in msg
  assert not os.path.exists(tmp_path / "out")


@pytest.mark.skipif(not os.environ.get("TFLM_ROOT")
                    or not shutil.which("arm-none-eabi-gcc"),
                    reason="needs TFLM_ROOT and arm-none-eabi-gcc")
def test_instruction_counts_name_just_what_is_missing(tmp_path, monkeypatch):
  monkeypatch.setenv("PATH", _only_tools(tmp_path, "arm-none-eabi-gcc"))
  with pytest.raises(pipeline.ExportError,
                     match=r"; missing: qemu-system-arm \(Debian "
                     r"qemu-system-arm\)\. Install"):
    pipeline.run_export(_cfg(tmp_path, instruction_counts=True))


@pytest.mark.parametrize("kw, message", [
    ({"device": "esp32"}, r"esp32 \(ESP32 \(dual Xtensa LX6, 240 MHz\)\) "
     "is not a Cortex-M board"),
    ({"device": "portenta_h7", "arena_in_external_ram": True},
     "links the arena in SRAM"),
])
def test_instruction_counts_need_a_cortex_m_board(tmp_path, kw, message):
  with pytest.raises(pipeline.ExportError, match=message):
    pipeline.run_export(_cfg(tmp_path, instruction_counts=True, **kw))


def test_cli_instruction_counts_error_is_one_line(tmp_path):
  env = {k: v for k, v in os.environ.items() if k != "TFLM_ROOT"}
  env["PATH"] = _only_tools(tmp_path)
  proc = subprocess.run([sys.executable, "-m", "export",
                         f"--out={tmp_path / 'out'}", "--instruction_counts"],
                        cwd=ROOT, capture_output=True, text=True, env=env)
  assert proc.returncode == 1
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 2 and lines[0].startswith("[1/7] load"), proc.stderr
  assert lines[1].startswith(
      "export failed: --instruction_counts needs TFLM_ROOT"), proc.stderr
  assert not (tmp_path / "out").exists()


@pytest.mark.slow  # two exports, each building the Cortex-M4F firmware
def test_instruction_counts_export_twice_is_byte_identical(tmp_path,
                                                           tflm_root):
  del tflm_root
  reports = []
  for name in ("a", "b"):
    result = pipeline.run_export(_cfg(tmp_path, out=str(tmp_path / name),
                                      instruction_counts=True, batch=1,
                                      max_samples=16))
    reports.append((tmp_path / name / "REPORT.md").read_bytes())
  assert reports[0] == reports[1]
  ic = result.report["instruction_counts"]
  assert ic["measured"] and ic["per_train_step"] > ic["per_prediction"] > 0
  g = result.report["firmware_globals"]
  assert g["measured"] and 0 < g["bytes"] <= fit.FIRMWARE_GLOBALS_ALLOWANCE[
      "cortex-m"]
  assert [g["consumer"], g["bytes"]] in result.report["fit"]["ram_consumers"]
  md = reports[0].decode()
  assert "## Instruction counts (Cortex-M4F firmware in QEMU)" in md
  assert f"| per train step (batch 1) | {ic['per_train_step']:,} |" in md
  assert "**measured** on the firmware linked" in md


def _small_board(tmp_path):
  path = tmp_path / "boards.json"
  path.write_text(json.dumps({"format": devices.FORMAT, "devices": {
      "tiny_board": {"display_name": "Tiny Board", "sram_bytes": 65536,
                     "usable_sram_bytes": 65536, "flash_bytes": 1048576}}}))
  return str(path)


@pytest.mark.slow
def test_does_not_fit_names_device_and_writes_nothing(tmp_path):
  cfg = _cfg(tmp_path, device="tiny_board", method="tinytl_lb",
             devices_files=(_small_board(tmp_path),))
  with pytest.raises(fit.DoesNotFitError) as e:
    pipeline.run_export(cfg)
  msg = str(e.value)
  assert "tiny_board (Tiny Board)" in msg and "available" in msg
  assert "arena (train + predict, shared head)" in msg
  assert "--resolution" in msg
  assert sorted(os.listdir(tmp_path)) == ["boards.json"]


@pytest.mark.slow
def test_default_export_twice_is_byte_identical(tmp_path):
  outs = []
  for name in ("a", "b"):
    out = tmp_path / name
    proc = subprocess.run([sys.executable, "-m", "export", f"--out={out}"],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    outs.append(out)
  cmp = filecmp.dircmp(outs[0], outs[1])
  files = []
  for root, _, names in os.walk(outs[0]):
    files += [os.path.relpath(os.path.join(root, n), outs[0]) for n in names]
  match, mismatch, errors = filecmp.cmpfiles(outs[0], outs[1], files,
                                             shallow=False)
  assert not mismatch and not errors and not cmp.left_only
  assert {"train.tflite", "infer.tflite", "report.json", "REPORT.md"} <= set(
      match)
  report = json.loads((outs[0] / "report.json").read_text())
  assert report["fit"]["fits"] and report["device"]["name"] == "nano33ble"
  assert report["parity"]["train"]["max_rel_err_loss"] <= 1e-4


_NOISE = ("I0000", "E0000", "W0000", "absl::InitializeLog", "cuda",
          "INFO:tensorflow", "fully_quantize", "Traceback")


def test_small_export_end_to_end_is_quiet_and_complete(tmp_path):
  """The main job, small: the CLI's whole pipeline on 10 images per class."""
  out = tmp_path / "small"
  proc = subprocess.run(
      [sys.executable, "-m", "export", f"--out={out}",
       "--samples_per_class=10", "--batch=1"], cwd=ROOT,
      capture_output=True, text=True, timeout=1200)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert proc.stdout.startswith(f"wrote {out} (fits nano33ble: ")
  lines = proc.stderr.splitlines()
  assert [l.split()[1] for l in lines] == [
      "load", "rewrite", "fine-tune", "lower", "verify", "export"], lines
  assert not [l for l in lines if any(n in l for n in _NOISE)], lines
  for name in ("train.tflite", "predict.tflite", "infer.tflite", "REPORT.md",
               "report.json", "device_training.png",
               "arduino/tltl_model/src/tl_model_config.h"):
    assert (out / name).is_file(), name
  report = json.loads((out / "report.json").read_text())
  assert report["fit"]["fits"]
  assert report["parity"]["train"]["parity"] in ("exact", "within_rounding")
  # infer.tflite follows the fine-tuned float model (each test image
  # quantized once, with the int8 model's input scale).
  assert report["parity"]["inference"]["int8_agreement"] >= 0.9
  host = report["accuracy"]["host_finetune"]
  assert host["recipe"]["epochs"] == 30 and host["test_accuracy"] > 0.3
  device = report["accuracy"]["device_training"]
  # The buffer fills the RAM the arena leaves, within half the test split.
  assert report["config"]["sample_buffer"] > 16
  assert device["samples"] == min(report["config"]["sample_buffer"], 50)
  assert device["epochs"] == 5
  assert device["epoch_losses"][-1] < device["epoch_losses"][0]
  md = (out / "REPORT.md").read_text()
  assert "device's own train step" in md and "(device_training.png)" in md
  assert "Not measured: run the export with --instruction_counts" in md
  assert "Firmware globals: 6144 B, **modelled**" in md
  assert report["instruction_counts"]["measured"] is False
  assert "constexpr int kTrainEpochs = 5;" in (
      out / "arduino/tltl_model/src/tl_model_config.h").read_text()


def test_cli_help_groups_the_flags_and_shows_examples():
  proc = subprocess.run([sys.executable, "-m", "export", "--help"], cwd=ROOT,
                        capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr
  text = proc.stdout
  groups = ["Model:", "Method and training:", "Data:", "Device:", "Output:",
            "Verification:", "Examples:"]
  assert all(g in text for g in groups)
  assert [text.index(g) for g in groups] == sorted(
      text.index(g) for g in groups)
  assert "python -m export --out=out/esp32 --device=esp32" in text
  assert not proc.stderr.strip()


def test_cli_groups_every_flag_it_defines():
  # Read from the source: importing the CLI here would define its flags in
  # this process, next to export.verify's of the same names.
  tree = ast.parse(open(os.path.join(ROOT, "export", "__main__.py")).read())
  defined, grouped = set(), set()
  for node in ast.walk(tree):
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        and node.func.attr.startswith("DEFINE_")):
      defined.add(node.args[0].value)
    if isinstance(node, ast.Assign) and any(
        getattr(t, "id", None) == "HELP_GROUPS" for t in node.targets):
      grouped = {n for group in ast.literal_eval(node.value)
                 for n in group[1]}
  assert defined and defined == grouped


def test_tinytrain_export_ships_its_selection_pass_checked_in_tflm(tmp_path):
  # A budget under which some layers train only some channels: the board
  # can re-select those.
  result = pipeline.run_export(_cfg(tmp_path, method="tinytrain", batch=1,
                                    device_epochs=0, kernels="builtin",
                                    precision="float", memory_budget=12000))
  out = tmp_path / "out"
  report = json.loads((out / "report.json").read_text())
  fisher = report["selection_pass"]
  assert (out / "fisher.tflite").stat().st_size == fisher["bytes"]
  assert "fisher.tflite" in report["files"]
  candidates = list(report["selection"]["layer_potentials"])
  assert sorted(fisher["layers"]) == sorted(candidates)
  assert fisher["max_rel_err"] < 1e-4 and fisher["same_ranking"]
  assert fisher["parity"] == "exact"
  assert 0 < fisher["arena_bytes"]
  assert "Selection pass: `fisher.tflite`" in (out / "REPORT.md").read_text()
  assert result.report["selection_pass"] == fisher
  on_device = fisher["on_device"]
  assert on_device["available"], on_device
  assert on_device["flash_bytes"] == fisher["bytes"]
  assert on_device["arena_bytes"] > fisher["arena_bytes"]  # + headroom
  assert report["arena_bytes"] == max(on_device["arena_bytes"],
                                      on_device["train_predict_arena_bytes"])
  src = out / "arduino" / "tltl_model" / "src"
  assert (src / "tl_fisher_model_data.h").exists()
  assert "g_tltl_fisher_model = g_tltl_models + " in (
      src / "tl_models_data.cc").read_text()
  assert "#define TLTL_RESELECT 1" in (src / "tl_reselect_config.h").read_text()
  assert "On-device re-selection: **available**" in (
      out / "REPORT.md").read_text()


def test_a_selection_pass_that_disagrees_is_left_out_saying_why(
    tmp_path, monkeypatch):
  from tflite_tl.pipeline import selection_graph

  def disagrees(*args, **kwargs):
    raise ValueError("fisher.tflite: TFLM's Fisher potentials differ from "
                     "TF's by 1.0e-02 (relative) at layer 'x'.")

  monkeypatch.setattr(selection_graph, "build", disagrees)
  pipeline.run_export(_cfg(tmp_path, method="tinytrain", batch=1,
                           device_epochs=0, kernels="builtin",
                           precision="float", memory_budget=12000))
  out = tmp_path / "out"
  report = json.loads((out / "report.json").read_text())
  assert not (out / "fisher.tflite").exists()
  assert "differ from TF's by 1.0e-02" in (
      report["selection_pass"]["unavailable"])
  assert "**not shipped**" in (out / "REPORT.md").read_text()
  # The board's App says why it cannot re-select, not "not TinyTrain".
  config = (out / "arduino" / "tltl_model" / "src" /
            "tl_reselect_config.h").read_text()
  assert "not shipped: fisher.tflite: TFLM's Fisher potentials" in config
  assert "#define TLTL_RESELECT 1" not in config


def test_other_methods_ship_no_selection_pass(tmp_path):
  pipeline.run_export(_cfg(tmp_path, method="ft_last", batch=1,
                           device_epochs=0, kernels="builtin",
                           precision="float"))
  out = tmp_path / "out"
  assert not (out / "fisher.tflite").exists()
  assert json.loads((out / "report.json").read_text())["selection_pass"] is None
