"""Catalogue of bad input, device profiles (docs/errors.md#device-profiles):
a board too small for anything, missing fields, negative or non-integer
sizes; refused before any heavy work."""
import json
import os

import pytest

from tflite_tl import devices
from tflite_tl import pipeline
from tflite_tl.pipeline.config import validate


def _profile(tmp_path, entry):
  path = tmp_path / "boards.json"
  path.write_text(json.dumps({"format": devices.FORMAT,
                              "devices": {"myboard": entry}}))
  return str(path)


def _cfg(tmp_path, profile, **kw):
  return pipeline.ExportConfig(out=str(tmp_path / "out"), model="tiny",
                               device="myboard", devices_files=(profile,),
                               **kw)


def test_one_kilobyte_board_is_refused_before_any_work(tmp_path):
  profile = _profile(tmp_path, {"sram_bytes": 1024, "usable_sram_bytes": 1024,
                                "flash_bytes": 1 << 20})
  with pytest.raises(pipeline.ExportError, match="Device 'myboard' offers "
                     "1,024 B of RAM for the arena; no export fits below "
                     r"16,384 B .*\(they are in bytes, not KB\)"):
    validate(_cfg(tmp_path, profile))
  assert not os.path.exists(tmp_path / "out")


@pytest.mark.parametrize("entry, message", [
    ({"sram_bytes": 262144, "flash_bytes": 1 << 20},
     "needs a positive integer 'usable_sram_bytes' (bytes), got None."),
    ({"sram_bytes": -1, "usable_sram_bytes": 1024, "flash_bytes": 1 << 20},
     "needs a positive integer 'sram_bytes' (bytes), got -1."),
    ({"sram_bytes": "256K", "usable_sram_bytes": 1024,
      "flash_bytes": 1 << 20},
     "needs a positive integer 'sram_bytes' (bytes), got '256K'."),
    ({"sram_bytes": 1024, "usable_sram_bytes": 2048, "flash_bytes": 1 << 20},
     "has usable_sram_bytes (2048) above sram_bytes (1024)."),
    ({"sram_bytes": 262144, "usable_sram_bytes": 262144,
      "flash_bytes": 1 << 20, "external_ram_bytes": -8},
     "external_ram_bytes must be a non-negative integer, got -8."),
    ({"sram_bytes": 262144, "usable_sram_bytes": 262144,
      "flash_bytes": 1 << 20, "sram_kb": 256},
     "has unknown keys ['sram_kb']"),
])
def test_malformed_profile_is_one_line_naming_file_and_field(tmp_path, entry,
                                                             message):
  profile = _profile(tmp_path, entry)
  with pytest.raises(devices.DeviceProfileError) as e:
    validate(_cfg(tmp_path, profile))
  text = str(e.value)
  assert text.startswith(f"{profile}: device 'myboard' ") and message in text
  assert "\n" not in text


def test_profile_file_missing_or_not_json(tmp_path):
  with pytest.raises(devices.DeviceProfileError,
                     match="Device profile file not found: .*nope.json"):
    devices.load_devices([str(tmp_path / "nope.json")])
  bad = tmp_path / "bad.json"
  bad.write_text("{sram: 1")
  with pytest.raises(devices.DeviceProfileError, match="bad.json is not "
                     "valid JSON"):
    devices.load_devices([str(bad)])


def test_unknown_device_and_missing_external_ram(tmp_path):
  with pytest.raises(devices.UnknownDeviceError, match="Unknown device 'uno'. "
                     "Known devices: .*nano33ble"):
    validate(pipeline.ExportConfig(out=str(tmp_path / "o"), device="uno"))
  with pytest.raises(devices.DeviceProfileError, match="has no PSRAM/SDRAM"):
    validate(pipeline.ExportConfig(out=str(tmp_path / "o"),
                                   arena_in_external_ram=True))
