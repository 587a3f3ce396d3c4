"""The exported Arduino library and ESP-IDF component compile against TFLM
from $TFLM_ROOT with -Wall -Wextra -Werror, for the host and Cortex-M4F, with
the samples in RAM and in flash (TLTL_SAMPLES_IN_FLASH)."""
import dataclasses
import os
import pathlib
import subprocess
import sys

import pytest

import tflite_fixtures as fx
from tflite_tl import atomic
from tflite_tl.firmware import compile_check
from tflite_tl.firmware import package
from tflite_tl.tflm import tflm_library

_ROOT = pathlib.Path(__file__).resolve().parents[1]
_PORTABLE = ("tl_trainer.cc", "tl_app.cc", "tl_persist.c", "tl_model_config.cc",
             "tl_models_data.cc", "tl_storage_esp_partition.c",
             "tl_storage_mbed_flash.cpp", "tl_samples.c")


@pytest.fixture(scope="module", params=["ram", "flash"])
def export_dir(tmp_path_factory, request):
  out = tmp_path_factory.mktemp("export")
  spec = dataclasses.replace(fx.package_spec("esp32"),
                             sample_storage=request.param)
  atomic.write_tree(str(out), package.package_files(spec))
  return out


@pytest.mark.parametrize("target", tflm_library.TARGETS)
def test_library_and_component_compile_with_werror(tflm_root, export_dir,
                                                   target):
  del tflm_root
  report = compile_check.compile_export(export_dir, target)
  for pkg in ("arduino/tiny_lib/src", "esp-idf/components/tiny_lib/src"):
    for name in _PORTABLE:
      assert f"{pkg}/{name}" in report.compiled
  assert "esp-idf/example/main/main.cc" in report.skipped
  assert ("arduino/tiny_lib/examples/train_on_device/train_on_device.ino"
          in report.skipped)
  assert "esp_partition.h" in report.guarded[
      "arduino/tiny_lib/src/tl_storage_esp_partition.c"]


def test_a_warning_fails_the_check(tflm_root, tmp_path):
  del tflm_root
  spec = fx.package_spec("esp32")
  files = {k: v for k, v in package.arduino_library(spec).items()
           if k.endswith(("/tl_trainer.cc", ".h"))}  # one source is enough
  files["arduino/tiny_lib/src/tl_trainer.cc"] += (
      "\nstatic int tl_unused_for_the_test;\n")
  atomic.write_tree(str(tmp_path), files)
  with pytest.raises(tflm_library.TflmBuildError,
                     match=r"tl_trainer\.cc.*tl_unused_for_the_test"):
    compile_check.compile_export(tmp_path, "host")


def test_a_directory_without_an_export_is_explained(tmp_path):
  with pytest.raises(FileNotFoundError, match="python -m export --out="):
    compile_check.compile_export(tmp_path, "host")


@pytest.mark.slow
def test_default_export_compiles_for_host_and_cortex_m4f(tflm_root, tmp_path):
  """The real default export (python -m export), then the CLI."""
  del tflm_root
  env = dict(os.environ, PYTHONPATH=str(_ROOT))
  out = tmp_path / "nano33ble"
  proc = subprocess.run([sys.executable, "-m", "export", f"--out={out}"],
                        cwd=_ROOT, env=env, capture_output=True, text=True,
                        timeout=3600, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  proc = subprocess.run(
      [sys.executable, "-m", "export.compile_check", f"--out={out}",
       "--targets=host,cortex-m4f"], cwd=_ROOT, env=env, capture_output=True,
      text=True, timeout=3600, check=False)
  assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
  assert "host: " in proc.stdout and "cortex-m4f: " in proc.stdout
