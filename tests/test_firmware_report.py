import json

from tflite_tl import devices
from tflite_tl.firmware import fit
from tflite_tl.firmware import report


def _report():
  dev = devices.get_device("esp32")
  result = fit.check_fit(dev, ram_consumers={"arena": 1000},
                         flash_consumers={"train.tflite": 500})
  return {
      "config": {"model": "tiny", "pretrained": True, "method": "tinytl_b",
                 "dataset": "digits", "resolution": 8, "batch": 2,
                 "learning_rate": 0.01, "momentum": 0.0,
                 "finetune_epochs": 0, "seed": 0, "sram_margin": 0.1,
                 "name": "lib", "arduino_tflm_library": "TFLM"},
      "device": dict(dev.to_dict(), arena_capacity=dev.arena_capacity()),
      "data": {"num_classes": 10, "channels": 1},
      "fit": result.to_dict(),
      "arenas": {"train.tflite": {"total": 9, "head": 5, "tail": 4}},
      "analytic_memory": None,
      "parity": {"train": {"steps": 2, "max_rel_err_loss": 1e-7,
                           "max_rel_err_params": 2e-7, "parity": "exact"},
                 "inference": {"images": 4, "max_rel_err_logits": 3e-7,
                               "float_accuracy": 0.5,
                               "predict_accuracy": 0.5,
                               "int8_accuracy": 0.25,
                               "int8_agreement": 0.75}},
      "ops": {"train.tflite": {"ADD": 2, "CONV_2D": 1},
              "infer.tflite": {"CONV_2D": 1}},
      "variables": [{"shared_name": "logits/bias", "shape": [10],
                     "bytes": 40, "in_predict_model": True}],
      "files": ["REPORT.md", "train.tflite"],
      "accuracy": {
          "host_finetune": {
              "recipe": {"optimizer": "adam", "learning_rate": 0.003,
                         "batch_size": 8, "epochs": 30},
              "test_images": 200, "test_accuracy": 0.61},
          "device_training": {
              "samples": 16, "classes_in_buffer": 10, "epochs": 5,
              "batch": 1, "steps": 80, "held_out_images": 4,
              "epoch_losses": [1.5, 1.2, 1.0, 0.9, 0.8],
              "accuracy_before": 0.5, "accuracy_after": 0.75,
              "buffer_accuracy_before": 0.5,
              "buffer_accuracy_after": 1.0}},
  }


def test_json_is_sorted_and_stable():
  text = report.report_json(_report())
  assert text == report.report_json(json.loads(text))
  assert list(json.loads(text)) == sorted(json.loads(text))


def test_markdown_has_fit_parity_ops_and_board_instructions():
  md = report.report_markdown(_report())
  assert "## Fit on esp32: fits" in md
  assert "| ADD |  | 2 |" in md  # op table: infer.tflite, train.tflite
  assert "int8 model (TFLM) accuracy | 0.25" in md
  assert "arduino-cli compile --fqbn esp32:esp32:esp32" in md
  assert "idf.py set-target esp32" in md
  assert "| logits/bias | 10 | 40 | True |" in md


def test_markdown_separates_host_and_device_accuracy():
  md = report.report_markdown(_report())
  assert "host fine-tune (30 epochs, adam lr 0.003, batch 8)" in md
  assert "| 200 (whole test split) | 61.0 % | host training" in md
  assert ("| device, after `T5` on 16 samples | 4 (held out) | 75.0 % | "
          "**device's own train step**") in md
  assert "![Loss per epoch" in md and "(device_training.png)" in md
  r = _report()
  r["accuracy"]["device_training"] = None
  assert "device's own train step" not in report.report_markdown(r)


def test_markdown_for_arduino_only_board_has_no_esp_idf():
  r = _report()
  dev = devices.get_device("pico")
  r["device"] = dict(dev.to_dict(), arena_capacity=dev.arena_capacity())
  md = report.report_markdown(r)
  assert "idf.py" not in md and "rp2040:rp2040:rpipico" in md


def test_lowering_section_of_builtin_int8_names_the_weight_quantization():
  lines = report.lowering_section({"lowering": {
      "kernels": "builtin", "precision": "int8", "qas": None,
      "why": "--kernels=builtin --precision=int8", "tried": [],
      "rejected_by_parity": [], "activation_scales": None,
      "weight_scales": "frozen kernels int8 per output channel"}})
  text = "\n".join(lines)
  assert "**builtin kernels, int8**" in text
  assert "int8 weights: frozen kernels int8 per output channel" in text
  assert "quantization-aware" not in text


_MEASURED = {
    "measured": True, "device": "nano33ble", "batch": 2,
    "per_train_step": 4599160, "per_prediction": 1156547, "begin": 3477840,
    "session": {"predictions": 3, "samples": 4, "train_steps": 2},
    "qemu": "qemu-system-arm -M mps2-an386 -icount shift=0 (semihosting)",
    "linked": {"text": 217080, "data": 2792, "bss": 70392},
    "ram_sections": {"data": 2776, "bss": 58104, "heap": 4096,
                     "stack": 8192},
    "globals_bytes": 17296, "source": "measured"}


def test_instruction_counts_section_when_measured():
  r = _report()
  r["instruction_counts"] = _MEASURED
  r["firmware_globals"] = fit.firmware_globals(
      devices.get_device("nano33ble"), 17296).to_dict()
  md = report.report_markdown(r)
  assert "## Instruction counts (Cortex-M4F firmware in QEMU)" in md
  assert "| per train step (batch 2) | 4,599,160 |" in md
  assert "| per prediction | 1,156,547 |" in md
  assert "`qemu-system-arm -M mps2-an386 -icount shift=0 (semihosting)`" in md
  assert ("text 217,080 B; in RAM .data 2,776 B, .bss 58,104 B, and the "
          "linker script's 4,096 B heap and 8,192 B stack") in md
  assert "Firmware globals: 17296 B, **measured**" in md
  assert md == report.report_markdown(json.loads(report.report_json(r)))


def test_instruction_counts_section_says_how_to_measure_them():
  r = _report()
  r["instruction_counts"] = {"measured": False, "how": "run the export with "
                             "--instruction_counts (needs TFLM_ROOT)"}
  r["firmware_globals"] = fit.firmware_globals(
      devices.get_device("esp32")).to_dict()
  md = report.report_markdown(r)
  assert ("Not measured: run the export with --instruction_counts (needs "
          "TFLM_ROOT).") in md
  assert "per train step" not in md
  assert "Firmware globals: 6144 B, **modelled** (the xtensa allowance" in md
  r["instruction_counts"] = r["firmware_globals"] = None
  md = report.report_markdown(r)
  assert "Instruction counts" not in md and "Firmware globals" not in md


def test_reselection_text_gives_its_cost_or_why_not():
  on = {"available": True, "layers": ["b1_dw", "b2_project"],
        "flash_bytes": 34504, "arena_bytes": 104400,
        "train_predict_arena_bytes": 160000, "board_arena_bytes": 160000,
        "ram_added_bytes": 152}
  text = report.reselect_text(on)
  assert "**available**, App command `F`" in text
  assert "34,504 B of flash" in text and "does not grow" in text
  text = report.reselect_text(dict(on, arena_bytes=200000,
                                   board_arena_bytes=200000))
  assert "the board's arena is 200,000 B" in text
  off = report.reselect_text({"available": False,
                              "why": "with the tl kernels: constants"})
  assert off.startswith("On-device re-selection: **not available** with the "
                        "tl kernels")


def test_rejected_selections_say_whether_the_ram_or_the_flash_missed():
  ram = {"reason": "ram", "earliest_layer": "b4_dw", "layers": ["b4_dw"],
         "memory_budget": 100_000, "modelled_bytes": 99_000,
         "ram_needed": 240_000, "ram_available": 235_930,
         "next_budget": 90_000}
  text = report._reselection_line(ram)
  assert "240,000 B of 235,930 B RAM" in text and "after b4_dw" in text
  # Reports written before the flash case have no reason: RAM.
  legacy = {k: v for k, v in ram.items() if k != "reason"}
  assert report._reselection_line(legacy) == text
  flash = {"reason": "flash", "layers": ["b7_dw", "b9_dw"],
           "parameter_budget": None, "persisted_bytes": 60_000,
           "parameter_slots_bytes": 131_072, "flash_needed": 826_432,
           "flash_available": 786_432, "next_parameter_budget": 41_689}
  text = report._reselection_line(flash)
  assert "826,432 B of 786,432 B flash" in text
  assert "parameter budget of 41,689 B" in text and "modelled under" not in text
  text = report._reselection_line(dict(flash, parameter_budget=50_000))
  assert "modelled under 50,000 B" in text
