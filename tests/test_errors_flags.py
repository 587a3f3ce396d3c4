"""Catalogue of bad input, flags (docs/errors.md#flags): every numeric
setting of the export and verify CLIs out of range or of the wrong kind is
refused in one line naming the flag, before any heavy work."""
import os

import pytest

from cli_run import assert_one_line_error
from cli_run import run_cli
from tflite_tl import pipeline
from tflite_tl.pipeline.config import validate
from tflite_tl import ranges
from tflite_tl.verify import check as verify_check


def _cfg(tmp_path, **kw):
  return pipeline.ExportConfig(out=str(tmp_path / "out"), model="tiny", **kw)


NAN, INF = float("nan"), float("inf")

EXPORT_CASES = [
    ({"resolution": 4}, "--resolution must be in [8, 1024] pixels, got 4."),
    ({"resolution": 5000},
     "--resolution must be in [8, 1024] pixels, got 5000."),
    ({"batch": 0}, "--batch must be in [1, 256], got 0."),
    ({"learning_rate": 0.0}, "--learning_rate must be > 0 (the on-device SGD "
     "step, e.g. 0.001), got 0.0."),
    ({"learning_rate": NAN}, "--learning_rate must be a finite number, got "
     "nan."),
    ({"learning_rate": INF}, "--learning_rate must be a finite number, got "
     "inf."),
    ({"learning_rate": 5.0}, "--learning_rate 5.0 is above 1: SGD diverges "
     "to inf/NaN within a few steps; use e.g. 0.001."),
    ({"momentum": 1.0}, "--momentum must be in [0, 1) (0: plain SGD), got "
     "1.0."),
    ({"label_smoothing": -0.1}, "--label_smoothing must be in [0, 1) (0: "
     "none), got -0.1."),
    ({"finetune_epochs": -1}, "--finetune_epochs must be >= 0 (0: no host "
     "fine-tuning), got -1."),
    ({"finetune_learning_rate": 0.0}, "--finetune_learning_rate must be > 0 "
     "(or unset: the recipe's), got 0.0."),
    ({"finetune_batch": 0}, "--finetune_batch must be >= 1, got 0."),
    ({"finetune_optimizer": "rmsprop"}, "Unknown --finetune_optimizer "
     "'rmsprop'. Supported: adam, sgd."),
    ({"samples_per_class": 0}, "--samples_per_class must be >= 1 (or unset: "
     "the whole dataset), got 0."),
    ({"calibration_images": 0}, "--calibration_images must be >= 1 (int8 "
     "quantization needs representative images), got 0."),
    ({"qat_epochs": -2}, "--qat_epochs must be >= 0 (0: no QAT), got -2."),
    ({"verify_steps": 0}, "--verify_steps must be >= 1 (train steps compared "
     "between TF and TFLM), got 0."),
    ({"verify_images": 0}, "--verify_images must be >= 1 (held-out images "
     "run in TFLM), got 0."),
    ({"parity_tolerance": -1e-4}, "--parity_tolerance must be > 0 (e.g. "
     "1e-4), got -0.0001."),
    ({"max_samples": 0}, "--max_samples must be >= 1 (or unset: as many as "
     "fit), got 0."),
    ({"device_epochs": -1}, "--device_epochs must be >= 0 (0 skips the "
     "on-device check), got -1."),
    ({"sram_margin": 1.0}, "--sram_margin must be in [0, 1) (the fraction of "
     "RAM kept free, e.g. 0.1), got 1.0."),
    ({"flash_reserve": -1}, "--flash_reserve must be >= 0 bytes, got -1."),
    ({"seed": -1}, "--seed must be in [0, 4294967295], got -1."),
    ({"name": "my-lib"}, "--name 'my-lib' must be a C identifier (letters, "
     "digits, '_')."),
    ({"method": "magic"}, "Unknown method 'magic'. Supported methods: "),
    ({"dataset": "imagenet"}, "Unknown dataset 'imagenet'. Supported: "),
    ({"selection_allocation": "marginal"}, "--selection_allocation is for "
     "--method=tinytrain, not "),
    ({"selection_allocation": "knapsack", "method": "tinytrain"},
     "--selection_allocation='knapsack' is not one of greedy, marginal, "
     "marginal_score."),
    ({"sample_storage": "disk"}, "--sample_storage='disk' is not one of "
     "auto, ram, flash."),
    ({"sample_storage": "flash", "device": "pico"}, "--sample_storage=flash: "
     "pico (Raspberry Pi Pico) has no storage backend for samples"),
]


@pytest.mark.parametrize("kw, message", EXPORT_CASES,
                         ids=[next(iter(k)) + "=" + repr(next(iter(k.values())))
                              for k, _ in EXPORT_CASES])
def test_export_setting_out_of_range_is_one_line(tmp_path, kw, message):
  with pytest.raises((ValueError, pipeline.ExportError)) as e:
    validate(_cfg(tmp_path, **kw))
  text = str(e.value)
  assert text.startswith(message), text
  assert "\n" not in text
  assert not os.path.exists(tmp_path / "out")


VERIFY_CASES = [
    ({"batch": 0}, "--batch must be in [1, 256], got 0."),
    ({"steps": 0}, "--steps must be >= 1 (train steps compared), got 0."),
    ({"resolution": 2}, "--resolution must be in [8, 1024] pixels, got 2."),
    ({"channels": 2}, "--channels must be 1 (gray) or 3 (RGB), got 2."),
    ({"num_classes": 1}, "--num_classes must be >= 2 (a classifier needs two "
     "classes or more), got 1."),
    ({"learning_rate": -0.01}, "--learning_rate must be > 0 (e.g. 0.01), got "
     "-0.01."),
    ({"tolerance": 0.0}, "--tolerance must be > 0 (e.g. 1e-4), got 0.0."),
    ({"width_multiplier": 0.0}, "--width_multiplier must be > 0 (e.g. 0.35), "
     "got 0.0."),
]


@pytest.mark.parametrize("kw, message", VERIFY_CASES,
                         ids=[next(iter(k)) for k, _ in VERIFY_CASES])
def test_verify_setting_out_of_range_is_one_line(kw, message):
  with pytest.raises(ranges.FlagError) as e:
    verify_check.verify(verify_check.VerifyConfig(**kw))
  assert str(e.value) == message


def test_cli_negative_finetune_epochs_one_line_nothing_written(tmp_path):
  out = tmp_path / "out"
  proc = run_cli("export", f"--out={out}", "--finetune_epochs=-1")
  assert_one_line_error(proc, "export failed: --finetune_epochs must be >= 0")
  assert not out.exists()
  assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_cli_non_numeric_flag_is_one_line():
  proc = run_cli("export", "--out=x", "--batch=abc")
  line = assert_one_line_error(proc, "export: flag --batch=abc:",
                               "Try --help.")
  assert "abc" in line


@pytest.mark.slow
def test_cli_traceback_only_on_request():
  proc = run_cli("export.verify", "--batch=0",
                 env={"TFLITE_TL_TRACEBACK": "1"})
  assert proc.returncode == 1
  assert "Traceback" in proc.stderr and "FlagError" in proc.stderr
  assert proc.stderr.rstrip().splitlines()[-1] == (
      "verify failed: --batch must be in [1, 256], got 0.")


@pytest.mark.slow
@pytest.mark.parametrize("args, prefix, fragment", [
    (("benchmarks.device_training", "--export=/nonexistent/export"),
     "device_training failed: --export=/nonexistent/export: no such "
     "directory;", "python -m export --out=DIR"),
    (("benchmarks.device_training", "--export=/tmp", "--learning_rates=0"),
     "device_training failed: --learning_rates=0: every entry must be a "
     "number > 0.", ""),
    (("benchmarks.memory_table", "--model=nope"),
     "memory_table failed: Unknown model 'nope'. Known models:", "tiny"),
    (("benchmarks.profile_arena", "--devices=uno"),
     "profile_arena failed: Unknown device 'uno'. Known devices:",
     "nano33ble"),
], ids=["device_training_export", "device_training_lr", "memory_table",
        "profile_arena"])
def test_benchmark_cli_bad_flag_is_one_line(args, prefix, fragment):
  assert_one_line_error(run_cli(*args), prefix, fragment)
