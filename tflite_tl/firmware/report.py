"""report.json and REPORT.md of an export.

Both are pure functions of the export's data: keys sorted, floats rounded
where they come from, no timestamps or host paths, so a second run with the
same flags writes identical bytes.
"""
import json
from typing import Any, Dict, List, Mapping, Optional

from tflite_tl.sparse.selection import Selection


def _kb(n: int) -> str:
  return f"{n / 1024:.1f} KB"


def report_json(report: Mapping[str, Any]) -> str:
  return json.dumps(report, indent=2, sort_keys=True) + "\n"


def _table(header: List[str], rows: List[List[Any]]) -> List[str]:
  out = ["| " + " | ".join(header) + " |",
         "|" + "|".join("---" for _ in header) + "|"]
  out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
  return out


def _weights_origin(cfg: Mapping[str, Any]) -> str:
  if cfg.get("model_file"):
    return "weights from the model file"
  return "pretrained" if cfg["pretrained"] else "NOT pretrained: random weights"


def report_markdown(r: Mapping[str, Any]) -> str:
  """Human-readable REPORT.md from the report.json dict."""
  cfg, dev, fit = r["config"], r["device"], r["fit"]
  verdict = "fits" if fit["fits"] else "DOES NOT FIT"
  lines = [
      f"# Export report: {cfg['model']} / {cfg['method']} on "
      f"{dev['display_name']}",
      "",
      f"Backbone `{cfg['model']}` ({_weights_origin(cfg)}), "
      f"method `{cfg['method']}`, dataset `{cfg['dataset']}` "
      f"({r['data']['num_classes']} classes), {cfg['resolution']} px x "
      f"{r['data']['channels']} channel(s), on-device batch "
      f"{cfg['batch']}, SGD lr {cfg['learning_rate']} momentum "
      f"{cfg['momentum']}, host fine-tuning: {_recipe_text(r)}, seed "
      f"{cfg['seed']}.",
      "",
  ]
  lines += lowering_section(r)
  lines += accuracy_section(r)
  lines += [
      f"## Fit on {dev['name']}: {verdict}",
      "",
  ]
  lines += _table(
      ["", "needed", "available", "board total", "fits"],
      [[fit["ram_kind"], f"{fit['ram_needed']} B ({_kb(fit['ram_needed'])})",
        f"{fit['ram_available']} B", f"{dev['arena_capacity']} B usable "
        f"({dev['sram_bytes']} B raw SRAM)", fit["ram_fits"]],
       ["flash", f"{fit['flash_needed']} B ({_kb(fit['flash_needed'])})",
        f"{fit['flash_available']} B", f"{dev['flash_bytes']} B",
        fit["flash_fits"]]])
  lines += [
      "",
      f"RAM margin kept free: {fit['ram_margin_bytes']} B "
      f"({r['config']['sram_margin']:.0%} of the usable RAM) for stack, "
      f"framework and heap. Flash reserve for the firmware: "
      f"{fit['flash_reserve']} B.",
      "",
  ]
  lines += globals_text(r)
  lines += samples_text(r)
  lines += [
      "### RAM consumers",
      "",
  ]
  lines += _table(["consumer", "bytes"],
                  [[n, b] for n, b in fit["ram_consumers"]])
  lines += ["", "### Flash consumers", ""]
  lines += _table(["consumer", "bytes"],
                  [[n, b] for n, b in fit["flash_consumers"]])
  lines += ["", "## Arenas (measured by TFLM's recording allocator)", ""]
  rows = []
  for name in sorted(r["arenas"]):
    a = r["arenas"][name]
    rows.append([name, a["total"], a["head"], a["tail"]])
  lines += _table(["model", "total B", "head B (tensors)",
                   "tail B (persistent)"], rows)
  if r.get("analytic_memory"):
    lines += ["", "Analytic training memory (TinyTL model, "
              "tflite_tl.memory): " + json.dumps(r["analytic_memory"],
                                                 sort_keys=True)]
  lines += instruction_counts_section(r)
  lines += ["", "## Parity in the TFLM interpreter", ""]
  tp = r["parity"]["train"]
  ip = r["parity"]["inference"]
  lines += _table(["check", "value"], [
      [f"train step over {tp['steps']} steps: verdict (exact, within "
       "rounding, failed)", tp.get("parity", "")],
      [f"train step: max relative error of the loss over {tp['steps']} steps",
       tp["max_rel_err_loss"]],
      ["train step: max relative error of the parameters",
       tp["max_rel_err_params"]],
      [f"predict model vs {'its int8 reference' if ip.get('int8_predict') else 'Keras'}: "
       f"max relative error of logits ({ip['images']} test images)",
       ip["max_rel_err_logits"]],
      ["predict model: verdict (exact; within rounding = at most 5 % of "
       "images off by an int8 rounding tie; failed)",
       f"{ip.get('verdict', '')} ({ip.get('differing_images', 0)} images "
       "differ)"],
      ["int8 reference (TF) accuracy" if ip.get("int8_predict")
       else "Keras float accuracy", ip["float_accuracy"]],
      [f"predict model (TFLM, {'int8' if ip.get('int8_predict') else 'float'})"
       " accuracy", ip["predict_accuracy"]],
      ["int8 model (TFLM) accuracy", ip["int8_accuracy"]],
      ["int8 vs float arg-max agreement", ip["int8_agreement"]],
  ])
  lines += ["", "## Ops", ""]
  ops = r["ops"]
  all_ops = sorted(set().union(*[set(v) for v in ops.values()]))
  models = sorted(ops)
  lines += _table(["op"] + models,
                  [[op] + [ops[m].get(op, "") for m in models]
                   for op in all_ops])
  lines += ["", "## Trained variables (saved by the board)", ""]
  lines += _table(["variable", "shape", "bytes", "in predict model"],
                  [[v["shared_name"], "x".join(map(str, v["shape"])) or
                    "scalar", v["bytes"], v["in_predict_model"]]
                   for v in r["variables"]])
  lines += ["", "## Files", ""]
  lines += [f"- `{f}`" for f in r["files"]]
  lines += ["", "## Use it", ""] + usage(r)
  return "\n".join(lines) + "\n"


def lowering_section(r: Mapping[str, Any]) -> List[str]:
  """## Lowering: the flavor and precision exported, and why; what a
  sparse-update method selected."""
  low = r.get("lowering")
  if not low:
    return []
  lines = ["## Lowering", "",
           f"Train step lowered with **{low['kernels']} kernels, "
           f"{low['precision']}** ({low['why']})."]
  if low["precision"] == "int8" and low["kernels"] == "builtin":
    lines.append(
        f"int8 weights: {low.get('weight_scales')}. Activations, backward "
        "and updates are float32, as in the float step.")
  elif low["precision"] == "int8":
    lines.append(
        f"int8 forward (per-channel int8 weights, int8 activations), float32 "
        f"backward, updates {'with' if low['qas'] else 'without'} "
        f"quantization-aware scaling; activation scales "
        f"{low['activation_scales']}.")
  if low.get("tried"):
    lines += ["", "Flavors measured (smallest batch, TFLM arena measured):",
              ""]
    lines += _table(["kernels", "precision", "batch", "train arena B",
                     "RAM needed B", "fits"],
                    [[t["kernels"], t["precision"], t["batch"],
                      f"{t['train_arena']:,}",
                      "–" if t.get("reason") else f"{t['ram_needed']:,}",
                      "yes" if t["fits"] else
                      ("no: " + t["reason"] if t.get("reason") else "no")]
                     for t in low["tried"]])
  for rej in low.get("rejected_by_parity") or ():
    at = f", batch {rej['batch']}" if rej.get("batch") else ""
    lines += ["", f"Not exported: {rej['kernels']} kernels, "
              f"{rej['precision']}{at}: {rej['reason']}"]
  lines.append("")
  budget, sel = r.get("memory_budget"), r.get("selection")
  if budget:
    parts = ", ".join(f"{k} {v:,} B" for k, v in
                      sorted(budget["consumers"].items()))
    lines += [f"Memory budget of the selection: {budget['budget_bytes']:,} B "
              f"= {budget['ram_available']:,} B of {budget['ram_kind']} after "
              f"a {budget['ram_margin_bytes']:,} B margin, minus {parts} "
              "(arenas measured in TFLM)."]
    for step in budget.get("reselections") or ():
      lines.append(_reselection_line(step))
    if budget.get("reselections"):
      bound = budget.get("selected_under_parameter_bytes")
      persisted = ("" if bound is None else
                   f" and a parameter budget of {bound:,} B")
      lines.append(f"- Exported: the selection under "
                   f"{budget['selected_under_bytes']:,} B{persisted}, which "
                   "fits.")
    lines.append("")
  if sel:
    lines += [Selection.from_dict(sel).format_markdown(), ""]
  fisher = r.get("selection_pass")
  if fisher and fisher.get("unavailable"):
    lines += [f"Selection pass: `{fisher['file']}` **not shipped**: "
              f"{fisher['unavailable']}; the train step is verified on its "
              "own.", ""]
  elif fisher:
    lines += [
        f"Selection pass: `{fisher['file']}` ({fisher['bytes']:,} B, "
        f"{fisher['precision']}, batch {fisher['batch_size']}) computes the "
        f"Fisher sums of the {len(fisher['layers'])} candidate layers on a "
        f"batch of samples, for a board to re-select channels for a new "
        f"task. TFLM arena {fisher['arena_bytes']:,} B (measured); on the "
        f"{fisher['support_images']} support images TFLM's potentials "
        f"{_fisher_agreement(fisher)} and rank the channels "
        f"{'identically' if fisher['same_ranking'] else 'differently'}"
        ".", ""]
    lines += [reselect_text(fisher.get("on_device")), ""]
  return lines


def _reselection_line(step: Mapping[str, Any]) -> str:
  """One selection the measured fit rejected: on the RAM (the next starts
  after its earliest layer) or on the flash (the next bounds its
  parameters). Reports written before the flash case have no reason."""
  layers = ", ".join(step["layers"])
  if step.get("reason") == "flash":
    bound = step["parameter_budget"]
    under = "" if bound is None else f" under {bound:,} B"
    return (f"- Rejected by the measured fit: {layers} "
            f"({step['persisted_bytes']:,} B of trained parameters and "
            f"optimizer state modelled{under}) needed "
            f"{step['flash_needed']:,} B of {step['flash_available']:,} B "
            f"flash (parameter slots {step['parameter_slots_bytes']:,} B); "
            "selected again under a parameter budget of "
            f"{step['next_parameter_budget']:,} B.")
  return (f"- Rejected by the measured fit: {layers} "
          f"({step['modelled_bytes']:,} B modelled under "
          f"{step['memory_budget']:,} B) needed {step['ram_needed']:,} B of "
          f"{step['ram_available']:,} B RAM; selected again from the layers "
          f"after {step['earliest_layer']} under {step['next_budget']:,} B.")


def _fisher_agreement(fisher: Mapping[str, Any]) -> str:
  """How TFLM's potentials agree with TF's (exact, or within rounding)."""
  if fisher.get("parity") == "within_rounding":
    return (f"differ from TF's by {fisher['max_rel_err']:.1e} (relative), "
            f"within rounding: TF's own potentials move by "
            f"{fisher['reference_sensitivity']:.1e} under 1-ulp noise in the "
            f"images (TFLM is {fisher['nearest_perturbed_rel_err']:.1e} from "
            f"the nearest such run)")
  return f"match TF's within {fisher['max_rel_err']:.1e} (relative)"


def reselect_text(on_device: Optional[Mapping[str, Any]]) -> str:
  """Whether the firmware re-selects on the board, and what it costs."""
  if not on_device:
    return "On-device re-selection: not available (no entry)."
  if not on_device["available"]:
    why = on_device["why"]
    return ("On-device re-selection: **not available**"
            + ("" if why.startswith("with ") else ":") + f" {why}.")
  both = on_device["train_predict_arena_bytes"]
  grown = on_device["arena_bytes"] > both
  return (
      "On-device re-selection: **available**, App command `F`: the board "
      "runs `fisher.tflite` over its stored samples and writes the top "
      "channels of each of "
      f"{', '.join(f'`{n}`' for n in on_device['layers'])} into the train "
      "model's channel variables (shapes and arena unchanged; every "
      "parameter restarts from its exported value: a new task). Costs "
      f"{on_device['flash_bytes']:,} B of flash (fisher.tflite, counted in "
      f"the fit check) and an arena of {on_device['arena_bytes']:,} B for "
      "the fisher model alone (measured in TFLM, plus headroom), run in the "
      "App's arena with the trainer torn down: "
      + (f"more than train + predict's {both:,} B, so the board's arena is "
         f"{on_device['board_arena_bytes']:,} B" if grown else
         f"within train + predict's {both:,} B, so the arena does not grow")
      + f"; RAM needed +{on_device['ram_added_bytes']:,} B in all.")


def globals_text(r: Mapping[str, Any]) -> List[str]:
  """What the fit check counts for the firmware's other globals, and whether
  it is measured or modelled."""
  g = r.get("firmware_globals")
  if not g:
    return []
  if g["measured"]:
    text = (f"Firmware globals: {g['bytes']} B, **measured** on the firmware "
            "linked for this board (`arm-none-eabi-size -A`: the .data and "
            ".bss sections minus the arena, the sample buffer and the "
            "variable scratch; stack and heap are the margin's): the App "
            "and trainer, the two interpreters and op resolvers, TFLM's and "
            "the C library's statics.")
  else:
    text = (f"Firmware globals: {g['bytes']} B, **modelled** (the "
            f"{g['family']} allowance of `tflite_tl/firmware/fit.py`, from "
            "the Cortex-M4F link of the exported App): the App and trainer, "
            "the two interpreters and op resolvers, TFLM's and the C "
            "library's statics. `--instruction_counts` measures them on the "
            "linked firmware.")
  return [text, ""]


def samples_text(r: Mapping[str, Any]) -> List[str]:
  """Where the board keeps its labelled samples, why, and the bytes."""
  s = r.get("sample_storage")
  if not s:
    return []
  if s["storage"] == "flash":
    text = (f"Samples: **in flash** ({s['why']}). The sample area holds "
            f"{s['records']} records of {s['record_bytes']} B "
            f"({s['flash_bytes']} B of flash, {s['erase_unit']} B erase "
            f"units; wrapping erases {s['records_erased_per_wrap']} oldest "
            f"record(s) at a time, so each unit is erased once per "
            f"{s['records']} samples collected); RAM holds one batch and the "
            f"records' index, {s['ram_bytes']} B instead of "
            f"{s['ram_bytes_if_in_ram']} B.")
  else:
    text = (f"Samples: **in RAM** ({s['why']}): {s['samples']} images, "
            f"{s['ram_bytes']} B.")
  return [text, ""]


def instruction_counts_section(r: Mapping[str, Any]) -> List[str]:
  """## Instruction counts: the firmware in QEMU, or how to measure them."""
  ic = r.get("instruction_counts")
  if not ic:
    return []
  lines = ["", "## Instruction counts (Cortex-M4F firmware in QEMU)", ""]
  if not ic["measured"]:
    return lines + [f"Not measured: {ic['how']}."]
  s, linked, ram = ic["session"], ic["linked"], ic["ram_sections"]
  lines += _table(["", "instructions"], [
      [f"per train step (batch {ic['batch']})", f"{ic['per_train_step']:,}"],
      ["per prediction", f"{ic['per_prediction']:,}"],
      ["Begin (both interpreters allocated, variables loaded)",
       f"{ic['begin']:,}"]])
  lines += [
      "",
      f"Measured, deterministic: the exported library with the QEMU driver, "
      f"compiled for Cortex-M4F with TFLM's flags, linked with "
      f"{ic['device']}'s flash and SRAM as the linker's regions (text "
      f"{linked['text']:,} B; in RAM .data {ram['data']:,} B, .bss "
      f"{ram['bss']:,} B, and the linker script's {ram['heap']:,} B heap "
      f"and {ram['stack']:,} B stack), run in `{ic['qemu']}` through a "
      "scripted "
      f"serial session ({s['predictions']} predictions, {s['samples']} "
      f"samples, `T1` = {s['train_steps']} train steps including filling "
      "each batch, `S`, `R`). QEMU counts instructions, not cycles: no "
      "pipeline, wait states or flash latency.",
  ]
  return lines


def _recipe_text(r: Mapping[str, Any]) -> str:
  host = r.get("accuracy", {}).get("host_finetune") or {}
  recipe = host.get("recipe")
  if not recipe:
    return "none"
  return (f"{recipe['epochs']} epochs, {recipe['optimizer']} lr "
          f"{recipe['learning_rate']:g}, batch {recipe['batch_size']}")


def _pct(x: float) -> str:
  return f"{100 * x:.1f} %"


def accuracy_section(r: Mapping[str, Any]) -> List[str]:
  """## Accuracy: host fine-tune, exported models in TFLM, and the device's
  own train step (the on-device check)."""
  acc = r.get("accuracy")
  if not acc:
    return []
  host, device = acc["host_finetune"], acc.get("device_training")
  ip = r["parity"]["inference"]
  rows = [
      [f"host fine-tune ({_recipe_text(r)})", f"{host['test_images']} "
       "(whole test split)", _pct(host["test_accuracy"]),
       "host training, Keras float model"],
      ["predict.tflite in TFLM", f"{ip['images']} (test sample)",
       _pct(ip["predict_accuracy"]), "exported parameters"],
      ["infer.tflite (int8) in TFLM", f"{ip['images']} (test sample)",
       _pct(ip["int8_accuracy"]), "exported parameters, int8"],
  ]
  if device:
    rows += [
        ["device, before training", f"{device['held_out_images']} "
         "(held out)", _pct(device["accuracy_before"]),
         "predict.tflite in TFLM"],
        [f"device, after `T{device['epochs']}` on {device['samples']} "
         "samples", f"{device['held_out_images']} (held out)",
         _pct(device["accuracy_after"]),
         "**device's own train step** (train.tflite in TFLM)"],
    ]
  lines = ["## Accuracy", ""]
  lines += _table(["model", "images", "accuracy", "source"], rows)
  lines.append("")
  if device:
    losses = ", ".join(f"{v:.3f}" for v in device["epoch_losses"])
    in_flash = (r.get("sample_storage") or {}).get("storage") == "flash"
    sized = ""
    if r["config"].get("max_samples") is None:
      sized = (", in flash: as many as the flash check leaves room for, at "
               "most 256" if in_flash
               else ", as many as the RAM left after the arena holds")
    lines += [
        "The first row comes from host training. The last two come from "
        "the device's own train step: the exported `train.tflite`, run in "
        "the TFLM interpreter on the host exactly as the app runs it on "
        f"the board (`T{device['epochs']}`, which `T` alone also does): "
        f"{device['epochs']} epochs over a sample buffer of "
        f"{device['samples']} images ({device['classes_in_buffer']} "
        f"classes; the app holds {r['config'].get('sample_buffer')}, "
        f"`kMaxSamples`{sized}), stored as bytes, in "
        f"batches of {device['batch']} ({device['steps']} steps). The "
        "samples are new images (from the test split, not used by the host "
        "fine-tune); accuracy is the predict model's, in TFLM, on "
        f"{device['held_out_images']} other held-out images, with the "
        "parameters before and after that training.",
        "",
        f"Mean loss per epoch on the device: {losses}. Accuracy on the "
        f"buffer's own {device['samples']} samples: "
        f"{_pct(device['buffer_accuracy_before'])} before, "
        f"{_pct(device['buffer_accuracy_after'])} after.",
        "",
    ]
    if device["accuracy_after"] < device["accuracy_before"]:
      lines += [
          f"Held-out accuracy fell: {device['samples']} samples are too few "
          f"for `{r['config']['method']}` to generalise from. Collect more "
          "samples (`--max_samples`, RAM permitting), train fewer epochs, or "
          "lower `--learning_rate`.",
          "",
      ]
    lines += [
        "![Loss per epoch of the on-device training, in TFLM]"
        "(device_training.png)",
        "",
    ]
  return lines


def usage(r: Mapping[str, Any]) -> List[str]:
  name = r["config"]["name"]
  dev = r["device"]
  lines = [
      "Arduino IDE / arduino-cli: copy or zip `arduino/" + name + "` into "
      "your libraries folder, install its TFLM dependency ("
      f"`{r['config']['arduino_tflm_library']}`), then open "
      f"File > Examples > {name} > train_on_device and upload"
      + (f" (FQBN `{dev['arduino_fqbn']}`):" if dev.get("arduino_fqbn")
         else ":"),
      "",
      "```",
      f"arduino-cli lib install {r['config']['arduino_tflm_library']}",
      f"arduino-cli compile --fqbn {dev.get('arduino_fqbn') or 'FQBN'} "
      f"--library arduino/{name} arduino/{name}/examples/train_on_device",
      "```",
      "",
      "Then talk to it over serial at 115200 baud (protocol in "
      "`src/tl_app.h`): `I`+image predicts, `L<label>\\n`+image adds a "
      "labelled sample, `T<epochs>\\n` trains, `S` saves, `R` restores.",
  ]
  if "esp-idf" in dev["frameworks"]:
    lines += [
        "",
        "ESP-IDF (>= 5.0): the component is `esp-idf/components/" + name +
        "` (depends on `espressif/esp-tflite-micro`); a ready project is "
        "`esp-idf/example` with a partition table holding the "
        "`tltl_params` partition:",
        "",
        "```",
        "cd esp-idf/example && idf.py set-target " +
        ("esp32s3" if "s3" in dev["name"] else "esp32") +
        " && idf.py build flash monitor",
        "```",
        "",
        "`idf.py menuconfig` > " + name + " > *Place the TFLM arena in PSRAM* "
        "moves the arena to PSRAM on boards that have it.",
    ]
  return lines
