import json

import pytest

from tflite_tl import devices


def test_shipped_boards_from_design_brief():
  names = devices.list_devices()
  for name in ("nano33ble", "pico", "pico2", "esp32", "esp32s3", "stm32f746",
               "stm32h743", "portenta_h7"):
    assert name in names
  nano = devices.get_device("nano33ble")
  assert nano.sram_bytes == 256 * 1024 and nano.flash_bytes == 1024 * 1024
  esp = devices.get_device("esp32")
  assert esp.sram_bytes == 520 * 1024
  assert esp.usable_sram_bytes == 320 * 1024
  assert esp.arena_capacity() == 320 * 1024
  assert "esp-idf" in esp.frameworks
  portenta = devices.get_device("portenta_h7")
  assert portenta.arena_capacity(use_external_ram=True) == 8 * 1024 * 1024


def test_external_ram_on_board_without_it_is_a_clear_error():
  with pytest.raises(devices.DeviceProfileError, match="nano33ble.*no PSRAM"):
    devices.get_device("nano33ble").arena_capacity(use_external_ram=True)


def test_unknown_device_names_the_known_ones():
  with pytest.raises(devices.UnknownDeviceError) as e:
    devices.get_device("uno")
  assert "'uno'" in str(e.value) and "nano33ble" in str(e.value)
  assert "--devices_file" in str(e.value)


def _write(path, devs):
  path.write_text(json.dumps({"format": devices.FORMAT, "devices": devs}))
  return str(path)


def test_user_file_adds_and_overrides(tmp_path, monkeypatch):
  extra = _write(tmp_path / "mine.json", {
      "myboard": {"sram_bytes": 131072, "usable_sram_bytes": 120000,
                  "flash_bytes": 524288},
      "nano33ble": {"sram_bytes": 262144, "usable_sram_bytes": 200000,
                    "flash_bytes": 1048576},
  })
  board = devices.get_device("myboard", extra_files=[extra])
  assert board.usable_sram_bytes == 120000 and board.source == extra
  assert devices.get_device("nano33ble", [extra]).usable_sram_bytes == 200000
  monkeypatch.setenv(devices.ENV_VAR, extra)
  assert "myboard" in devices.list_devices()


@pytest.mark.parametrize("entry, message", [
    ({"sram_bytes": 1, "flash_bytes": 1}, "usable_sram_bytes"),
    ({"sram_bytes": 10, "usable_sram_bytes": 20, "flash_bytes": 1},
     "above sram_bytes"),
    ({"sram_bytes": 10, "usable_sram_bytes": 10, "flash_bytes": 1,
      "frameworks": ["zephyr"]}, "supported"),
    ({"sram_bytes": 10, "usable_sram_bytes": 10, "flash_bytes": 1,
      "sram_kb": 3}, "unknown keys"),
])
def test_malformed_user_profiles_are_rejected(tmp_path, entry, message):
  extra = _write(tmp_path / "bad.json", {"bad": entry})
  with pytest.raises(devices.DeviceProfileError, match=message):
    devices.load_devices([extra])


def test_wrong_format_and_missing_file(tmp_path):
  p = tmp_path / "x.json"
  p.write_text("{}")
  with pytest.raises(devices.DeviceProfileError, match="format"):
    devices.load_devices([str(p)])
  with pytest.raises(devices.DeviceProfileError, match="not found"):
    devices.load_devices([str(tmp_path / "missing.json")])
