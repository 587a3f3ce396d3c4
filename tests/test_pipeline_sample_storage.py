"""--sample_storage: where the export puts the board's samples (auto: RAM
when the whole sample buffer fits, else flash on a board with storage), the
fit check's figures either way, and what REPORT.md says about it."""
import dataclasses

import pytest

import tflite_fixtures as fx
from tflite_tl import devices
from tflite_tl import pipeline
from tflite_tl.firmware import fit
from tflite_tl.firmware import package
from tflite_tl.firmware import report as report_lib
from tflite_tl.pipeline import export

BIG = 32  # 96 px images: 295 KB, beyond the Nano 33 BLE's RAM
SHAPE = (96, 96, 1)


@pytest.fixture(scope="module")
def nano_spec():
  return fx.package_spec("nano33ble")


def _cfg(**kw):
  return pipeline.ExportConfig(out="unused", **kw)


def test_auto_keeps_a_buffer_that_fits_in_ram(nano_spec):
  spec, result = export._place_samples(_cfg(), nano_spec.device, nano_spec)
  assert spec.sample_storage == "ram" and result.fits
  assert dict(result.ram_consumers)["sample buffer"] == (
      spec.max_samples * (spec.image_elements + 1))
  assert not any(n.startswith("sample area") for n, _ in
                 result.flash_consumers)


def test_auto_moves_a_buffer_too_big_for_ram_to_flash(nano_spec):
  big = dataclasses.replace(nano_spec, max_samples=BIG,
                            image_shape=SHAPE)
  spec, result = export._place_samples(_cfg(), big.device, big)
  assert spec.sample_storage == "flash" and result.fits
  ram = dict(result.ram_consumers)
  flash = dict(result.flash_consumers)
  batch = ram["sample buffer (one batch; samples in flash)"]
  assert batch == (spec.batch_size * spec.image_elements
                   + spec.sample_area.ram_index_bytes)
  area = spec.sample_area
  assert flash[f"sample area ({area.slots} records)"] == area.bytes
  assert area.kept_after_wrap >= BIG
  assert spec.storage_region_bytes == spec.storage_flash_bytes + area.bytes
  # REPORT.md and report.json state the choice, why, and the bytes.
  s = export._samples_report(_cfg(), big.device, spec, result)
  assert s["storage"] == "flash" and s["why"].startswith("auto: 32 images")
  assert s["ram_bytes_if_in_ram"] == BIG * (spec.image_elements + 1)
  assert s["flash_bytes"] == area.bytes
  text = report_lib.samples_text({"sample_storage": s})[0]
  assert "**in flash**" in text and f"{area.bytes} B of flash" in text
  config = package.model_config_header(spec)
  assert "#define TLTL_SAMPLES_IN_FLASH 1" in config
  assert f"constexpr uint32_t kSampleAreaBytes = {area.bytes};" in config


def test_flash_when_asked_and_ram_when_asked(nano_spec):
  spec, result = export._place_samples(_cfg(sample_storage="flash"),
                                       nano_spec.device, nano_spec)
  assert spec.sample_storage == "flash" and result.fits
  big = dataclasses.replace(nano_spec, max_samples=BIG,
                            image_shape=SHAPE)
  spec, result = export._place_samples(_cfg(sample_storage="ram"),
                                       big.device, big)
  assert spec.sample_storage == "ram" and not result.ram_fits
  s = export._samples_report(_cfg(sample_storage="ram"), big.device, spec,
                             result)
  assert s["why"] == "--sample_storage=ram"
  assert "#define TLTL_SAMPLES_IN_FLASH 0" in package.model_config_header(
      spec)


def test_a_board_without_storage_gets_the_does_not_fit_error(nano_spec):
  pico = devices.get_device("pico")
  big = dataclasses.replace(nano_spec, device=pico, max_samples=BIG,
                            image_shape=SHAPE)
  spec, result = export._place_samples(_cfg(), pico, big)
  assert spec.sample_storage == "ram" and not result.ram_fits
  with pytest.raises(fit.DoesNotFitError) as e:
    fit.require_fit(pico, result)
  msg = str(e.value)
  assert f"needs {result.ram_needed} bytes" in msg
  assert "sample buffer" in msg and "lower --max_samples" in msg
  assert "--sample_storage=flash" not in msg  # no storage on the Pico
  # On a board with storage the message names the flash option.
  nano_big = dataclasses.replace(nano_spec, max_samples=BIG,
                            image_shape=SHAPE)
  _, ram_fit = export._place_samples(_cfg(sample_storage="ram"),
                                     nano_big.device, nano_big)
  with pytest.raises(fit.DoesNotFitError,
                     match="--sample_storage=flash"):
    fit.require_fit(nano_big.device, ram_fit)


def test_esp32_partition_holds_the_sample_area():
  spec = dataclasses.replace(fx.package_spec("esp32"), max_samples=BIG,
                             image_shape=SHAPE, sample_storage="flash")
  table = package.esp_idf(spec)["esp-idf/example/partitions.csv"]
  size = int(table.strip().splitlines()[-1].split(",")[-1], 16)
  assert size >= spec.storage_region_bytes
