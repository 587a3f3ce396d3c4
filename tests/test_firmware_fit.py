import pytest

from tflite_tl import devices
from tflite_tl.firmware import fit


def _check(dev, train, infer=10_000, model=300_000, **kw):
  return fit.check_fit(
      dev, ram_consumers={"train arena": train, "infer arena": infer},
      flash_consumers={"train.tflite": model, "infer.tflite": model // 4,
                       "parameter slots": 8192}, **kw)


def test_fits_with_stated_margin():
  nano = devices.get_device("nano33ble")
  r = _check(nano, 150_000)
  assert r.fits
  assert r.ram_margin_bytes == round(262144 * fit.DEFAULT_SRAM_MARGIN)
  assert r.ram_available == 262144 - r.ram_margin_bytes
  assert r.flash_available == 1048576 - fit.DEFAULT_FLASH_RESERVE
  assert r.ram_consumers[0] == ("train arena", 150_000)
  assert r.to_dict()["fits"] is True


def test_margin_is_what_makes_it_fail():
  nano = devices.get_device("nano33ble")
  assert _check(nano, 240_000, sram_margin=0.0).fits
  assert not _check(nano, 240_000).fits


def test_esp32_uses_usable_not_raw_sram():
  esp = devices.get_device("esp32")
  r = _check(esp, 400_000, sram_margin=0.0)
  assert not r.ram_fits and r.ram_available == 320 * 1024


def test_error_names_device_bytes_consumers_and_fixes():
  nano = devices.get_device("nano33ble")
  r = _check(nano, 900_000)
  with pytest.raises(fit.DoesNotFitError) as e:
    fit.require_fit(nano, r, devices.load_devices())
  msg = str(e.value)
  assert "nano33ble" in msg and "Arduino Nano 33 BLE Sense" in msg
  assert str(r.ram_needed) in msg and str(r.ram_available) in msg
  assert "train arena" in msg
  assert "--batch" in msg and "--resolution" in msg and "--method" in msg
  assert "ft_last" in msg
  assert "stm32h743" in msg  # 1 MB SRAM board would fit
  assert "esp32 " not in msg.replace("esp32 (", "")  # 320 KB is too small


def test_external_ram_suggested_and_used():
  esp = devices.get_device("esp32_psram")
  r = _check(esp, 600_000)
  assert not r.fits
  assert "--arena_in_external_ram" in fit.explain(esp, r)
  assert _check(esp, 600_000, use_external_ram=True).fits


def test_flash_overflow_is_reported():
  nano = devices.get_device("nano33ble")
  r = _check(nano, 10_000, model=900_000)
  assert r.ram_fits and not r.flash_fits
  assert "flash" in fit.explain(nano, r) and "train.tflite" in fit.explain(nano, r)
  assert "--max_samples" not in fit.explain(nano, r)  # no samples in flash


def test_a_flash_sample_area_that_could_shrink_names_max_samples():
  nano = devices.get_device("nano33ble")
  area = f"{fit.SAMPLE_AREA} (13 records)"

  def check(area_bytes, graph=600_000):
    return fit.check_fit(nano, ram_consumers={"arena": 10_000},
                         flash_consumers={"train.tflite": graph,
                                          area: area_bytes},
                         flash_reserve=262_144)

  r = check(266_240)  # 79,808 B over: fewer records fit
  assert not r.flash_fits
  assert ("lower --max_samples (the samples' area in flash is 266240 B, "
          "79808 B more than fits)") in fit.explain(nano, r)
  r = check(20_480, graph=800_000)  # no sample count helps
  assert not r.flash_fits and "--max_samples" not in fit.explain(nano, r)


def test_a_flash_miss_the_parameter_slots_could_remove_names_them():
  nano = devices.get_device("nano33ble")
  slots = f"{fit.PARAMETER_SLOTS} (2)"
  r = fit.check_fit(nano, ram_consumers={"arena": 10_000},
                    flash_consumers={"train.tflite": 700_000,
                                     slots: 184_320},
                    flash_reserve=262_144)
  over = r.flash_needed - r.flash_available
  assert 0 < over < 184_320
  text = fit.explain(nano, r, method="tinytrain")
  assert "train fewer parameters" in text and "184320 B" in text
  assert "--memory_budget" in text
  assert "--memory_budget" not in fit.explain(nano, r, method="tinytl_b")
  big = fit.check_fit(nano, ram_consumers={"arena": 10_000},
                      flash_consumers={"train.tflite": 900_000,
                                       slots: 8_192}, flash_reserve=262_144)
  assert "train fewer parameters" not in fit.explain(nano, big)


def test_bad_margin():
  with pytest.raises(ValueError, match="sram_margin"):
    _check(devices.get_device("pico"), 1, sram_margin=1.5)


def test_suggestions_follow_batch_and_method():
  nano = devices.get_device("nano33ble")
  r = _check(nano, 900_000)
  msg = fit.explain(nano, r, batch=1, method="ft_last")
  assert "--batch" not in msg and "lighter --method" not in msg
  msg = fit.explain(nano, r, batch=4, method="tinytl_lb")
  assert "--batch" in msg and "ft_last, tinytl_b, tinytl_l;" in msg


def test_firmware_globals_are_modelled_per_family_or_measured():
  nano = devices.get_device("nano33ble")
  esp = devices.get_device("esp32")
  assert fit.target_family(nano) == "cortex-m"
  assert fit.target_family(esp) == "xtensa"
  modelled = fit.firmware_globals(nano)
  assert not modelled.measured
  assert modelled.bytes == fit.FIRMWARE_GLOBALS_ALLOWANCE["cortex-m"]
  assert modelled.consumer == ("firmware globals (modelled, cortex-m "
                               "allowance)")
  assert fit.firmware_globals(esp).bytes == \
      fit.FIRMWARE_GLOBALS_ALLOWANCE["xtensa"]
  measured = fit.firmware_globals(nano, 17_000)
  assert measured.measured and measured.bytes == 17_000
  assert measured.consumer == "firmware globals (measured, linked firmware)"
  assert measured.to_dict()["consumer"] == measured.consumer
  with pytest.raises(ValueError, match=">= 0"):
    fit.firmware_globals(nano, -1)
