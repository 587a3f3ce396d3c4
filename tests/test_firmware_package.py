import dataclasses
import os
import shutil
import subprocess

import pytest

import tflite_fixtures as fx
from tflite_tl import devices
from tflite_tl.flatbuffer import reader
from tflite_tl.firmware import fit
from tflite_tl.firmware import package
from tflite_tl.firmware import persistence
from tflite_tl.lower import quantize
from tflite_tl.tflm.arena import ArenaReport


@pytest.fixture(scope="module")
def spec():
  m = fx.TinyStep()
  train = fx.convert(m, m.train_step)
  predict = fx.convert(m, m.predict)
  int8 = quantize.quantize_int8(fx.keras_classifier(),
                                fx.calibration_images())
  from tflite_tl.tflm.runner import train_inputs_order
  images, labels = train_inputs_order(train)
  return package.BuildSpec(
      name="tiny_lib", model_name="tiny", method="tinytl_b",
      device=devices.get_device("esp32"), train_tflite=train,
      predict_tflite=predict, infer_int8_tflite=int8,
      train_info=reader.model_info(train),
      predict_info=reader.model_info(predict),
      infer_int8_info=reader.model_info(int8),
      train_images_input=images, train_labels_input=labels,
      batch_size=fx.BATCH, image_shape=fx.IMAGE,
      class_names=("a", "b", 'quote"c'),
      arena=package.shared_arena_bytes(ArenaReport(1000, 600, 400, {}),
                                       ArenaReport(700, 500, 200, {})),
      max_samples=4)


def test_shared_arena_is_larger_head_plus_tails(spec):
  assert spec.arena == 400 + 200 + 600
  assert spec.arena_bytes % 16 == 0
  assert spec.arena_bytes >= spec.arena + package.ARENA_HEADROOM


def test_layout_of_arduino_library_and_esp_idf_component(spec):
  files = package.package_files(spec)
  lib = "arduino/tiny_lib"
  for f in ("library.properties", "src/tiny_lib.h", "src/tl_trainer.cc",
            "src/tl_persist.c", "src/tl_op_resolver.h",
            "src/tl_model_config.h", "src/tl_model_config.cc",
            "src/tl_models_data.cc", "src/tl_train_model_data.h",
            "src/tl_predict_model_data.h", "src/tl_infer_model_data.h",
            "examples/train_on_device/train_on_device.ino"):
    assert f"{lib}/{f}" in files
  comp = "esp-idf/components/tiny_lib"
  for f in ("CMakeLists.txt", "idf_component.yml", "Kconfig",
            "include/tl_trainer.h", "src/tl_trainer.cc"):
    assert f"{comp}/{f}" in files
  assert "espressif/esp-tflite-micro" in files[f"{comp}/idf_component.yml"]
  assert "TLTL_ARENA_IN_PSRAM" in files[f"{comp}/Kconfig"]
  assert "tltl_params" in files["esp-idf/example/partitions.csv"]
  assert files["train.tflite"] == spec.train_tflite
  assert files["infer.tflite"] == spec.infer_int8_tflite
  assert "name=tiny_lib" in files[f"{lib}/library.properties"]


def test_no_esp_idf_for_arduino_only_board(spec):
  import dataclasses
  nano = dataclasses.replace(spec, device=devices.get_device("nano33ble"))
  assert not any(f.startswith("esp-idf/") for f in package.package_files(nano))


def test_config_describes_models_and_variables(spec):
  header = package.model_config_header(spec)
  assert f"kArenaBytes = {spec.arena_bytes};" in header
  assert f"kBatchSize = {fx.BATCH};" in header
  assert f"kSchemaId = 0x{persistence.schema_id(spec.variables):08x}u;" in header
  source = package.model_config_source(spec)
  for v in spec.variables:
    assert v.initial_buffer >= 0
    # Resource variables: no variable tensor in either model.
    assert (f'"{v.shared_name}", {v.num_bytes}u, {v.initial_buffer}, -1, '
            "-1}") in source
  assert spec.kernels == "builtin" and not spec.images_int8
  assert f"kScratchBytes = {spec.max_variable_bytes};" in header
  assert r'"quote\"c",' in source


def test_generation_is_deterministic(spec):
  assert package.package_files(spec) == package.package_files(spec)


def test_check_variables_rejects_foreign_predict_model(spec):
  package.check_variables(spec)
  import dataclasses
  other = reader.ModelInfo(
      spec.predict_info.inputs, spec.predict_info.outputs,
      (reader.VariableInfo("", "not_in_train", (3,), "FLOAT32", 1),), 10)
  with pytest.raises(ValueError, match="not_in_train"):
    package.check_variables(dataclasses.replace(spec, predict_info=other))


MAIN = r"""
#include <cstdio>
#include <cstring>
#include "tl_infer_model_data.h"
#include "tl_models_data.h"
#include "tl_persist.h"
#include "tl_predict_model_data.h"
#include "tl_train_model_data.h"
int main(int argc, char** argv) {
  (void)argc;
  // Each model, read from its pointer to the end of the image, is the
  // linked model the generator checked (argv: one file per model).
  const uint8_t* arrays[3] = {g_tltl_train_model, g_tltl_predict_model,
                              g_tltl_infer_model};
  const size_t lens[3] = {g_tltl_train_model_len, g_tltl_predict_model_len,
                          g_tltl_infer_model_len};
  const uint8_t* end = g_tltl_models + g_tltl_models_len;
  for (int i = 0; i < 3; ++i) {
    FILE* f = std::fopen(argv[i + 1], "rb");
    if (!f) return 3;
    static unsigned char buf[1 << 20];
    size_t n = std::fread(buf, 1, sizeof(buf), f);
    std::fclose(f);
    if (n != static_cast<size_t>(end - arrays[i]) ||
        std::memcmp(buf, arrays[i], n) != 0) return 4 + i;
    if (lens[i] > n) return 7 + i;
    if (reinterpret_cast<uintptr_t>(arrays[i]) % 16 != 0) return 10 + i;
  }
  std::printf("crc %08x\n", tl_crc32(0, g_tltl_train_model,
                                     g_tltl_train_model_len));
  return 0;
}
"""


def test_generated_framework_free_code_compiles_and_matches(spec, tmp_path):
  gxx = shutil.which("g++")
  if gxx is None:
    pytest.skip("g++ not installed")
  files = package.package_files(spec)
  src = tmp_path / "src"
  src.mkdir()
  for rel, content in files.items():
    if rel.startswith("arduino/tiny_lib/src/"):
      (src / os.path.basename(rel)).write_text(content)
  image = spec.model_image
  for i, name in enumerate(("train.tflite", "predict.tflite", "infer.tflite")):
    (tmp_path / name).write_bytes(image.model(i))
  (tmp_path / "main.cc").write_text(MAIN)
  exe = str(tmp_path / "check")
  sources = [str(src / "tl_models_data.cc")]
  subprocess.run([gxx, "-std=c++11", "-Wall", "-Wextra", "-Werror", "-I",
                  str(src), *sources, "-x", "c++", str(src / "tl_persist.c"),
                  "-x", "c++", str(tmp_path / "main.cc"), "-o", exe],
                 check=True)
  out = subprocess.run([exe, str(tmp_path / "train.tflite"),
                        str(tmp_path / "predict.tflite"),
                        str(tmp_path / "infer.tflite")],
                       capture_output=True, text=True)
  assert out.returncode == 0, out
  import zlib
  own = image.model(0)[:image.lengths[0]]
  assert out.stdout.split()[1] == f"{zlib.crc32(own):08x}"


def test_ram_consumers_count_the_firmware_globals(spec):
  ram, _ = package.memory_consumers(spec)
  modelled = "firmware globals (modelled, xtensa allowance)"
  assert ram[modelled] == fit.FIRMWARE_GLOBALS_ALLOWANCE["xtensa"]
  ram, _ = package.memory_consumers(spec, globals_bytes=12_345)
  assert ram["firmware globals (measured, linked firmware)"] == 12_345
  assert modelled not in ram
  external = dataclasses.replace(
      spec, device=devices.get_device("esp32_psram"),
      arena_in_external_ram=True)
  ram, _ = package.memory_consumers(external)
  assert not [name for name in ram if name.startswith("firmware globals")]
