"""Board profiles (SRAM, flash, optional external RAM) as data users can extend.

The shipped boards live in ``devices.json`` beside this file. Users add or
override boards with their own JSON files in the same format, either passed
explicitly (``load_devices(extra_files=[...])``, ``python -m export
--devices_file=...``) or listed in the ``TFLITE_TL_DEVICES`` environment
variable (paths separated by ``os.pathsep``). A later file overrides an earlier
one board by board, so a user file can correct a shipped figure.

Two SRAM figures are kept per board: ``sram_bytes`` is the datasheet total and
``usable_sram_bytes`` what an application can actually allocate (on the ESP32
only about 320 KB of the 520 KB is usable as data RAM; the rest is instruction
RAM and cache). Fit checks use the usable figure.
"""
import dataclasses
import json
import os
from typing import Dict, Iterable, Optional, Sequence, Tuple

from tflite_tl.devices.errors import DeviceProfileError, UnknownDeviceError

FORMAT = "tflite-tl-devices/1"
ENV_VAR = "TFLITE_TL_DEVICES"
_SHIPPED = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "devices.json")
_REQUIRED_INT = ("sram_bytes", "usable_sram_bytes", "flash_bytes")
_FRAMEWORKS = ("arduino", "esp-idf")

__all__ = [
    "Device", "DeviceProfileError", "UnknownDeviceError", "ENV_VAR", "FORMAT",
    "get_device", "list_devices", "load_devices",
]


@dataclasses.dataclass(frozen=True)
class Device:
  """One board: memory sizes in bytes and the frameworks we export for."""
  name: str
  display_name: str
  mcu: str
  sram_bytes: int
  usable_sram_bytes: int
  flash_bytes: int
  external_ram_bytes: int = 0
  external_ram_kind: str = ""
  frameworks: Tuple[str, ...] = ("arduino",)
  arduino_fqbn: str = ""
  source: str = ""

  @property
  def has_external_ram(self) -> bool:
    return self.external_ram_bytes > 0

  def arena_capacity(self, use_external_ram: bool = False) -> int:
    """Bytes an arena may occupy: usable SRAM, or the external RAM if asked."""
    if use_external_ram:
      if not self.has_external_ram:
        raise DeviceProfileError(
            f"Device '{self.name}' ({self.display_name}) has no PSRAM/SDRAM; "
            "choose a board with external RAM (e.g. esp32_psram, "
            "esp32s3_psram, portenta_h7) or keep the arena in SRAM.")
      return self.external_ram_bytes
    return self.usable_sram_bytes

  def to_dict(self) -> dict:
    d = dataclasses.asdict(self)
    d["frameworks"] = list(self.frameworks)
    d.pop("source")
    return d


def _parse_device(name: str, entry: dict, source: str) -> Device:
  if not isinstance(entry, dict):
    raise DeviceProfileError(
        f"{source}: device '{name}' must be a JSON object, got "
        f"{type(entry).__name__}.")
  for key in _REQUIRED_INT:
    value = entry.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
      raise DeviceProfileError(
          f"{source}: device '{name}' needs a positive integer '{key}' "
          f"(bytes), got {value!r}.")
  if entry["usable_sram_bytes"] > entry["sram_bytes"]:
    raise DeviceProfileError(
        f"{source}: device '{name}' has usable_sram_bytes "
        f"({entry['usable_sram_bytes']}) above sram_bytes "
        f"({entry['sram_bytes']}).")
  ext = entry.get("external_ram_bytes", 0)
  if not isinstance(ext, int) or isinstance(ext, bool) or ext < 0:
    raise DeviceProfileError(
        f"{source}: device '{name}' external_ram_bytes must be a "
        f"non-negative integer, got {ext!r}.")
  frameworks = tuple(entry.get("frameworks", ["arduino"]))
  unknown = [f for f in frameworks if f not in _FRAMEWORKS]
  if unknown or not frameworks:
    raise DeviceProfileError(
        f"{source}: device '{name}' lists frameworks {list(frameworks)}; "
        f"supported: {list(_FRAMEWORKS)}.")
  known = {f.name for f in dataclasses.fields(Device)}
  extra = sorted(set(entry) - known)
  if extra:
    raise DeviceProfileError(
        f"{source}: device '{name}' has unknown keys {extra}; allowed: "
        f"{sorted(known - {'name', 'source'})}.")
  return Device(
      name=name,
      display_name=str(entry.get("display_name", name)),
      mcu=str(entry.get("mcu", "")),
      sram_bytes=entry["sram_bytes"],
      usable_sram_bytes=entry["usable_sram_bytes"],
      flash_bytes=entry["flash_bytes"],
      external_ram_bytes=ext,
      external_ram_kind=str(entry.get("external_ram_kind", "")),
      frameworks=frameworks,
      arduino_fqbn=str(entry.get("arduino_fqbn", "")),
      source=source)


def _read_file(path: str) -> Dict[str, Device]:
  try:
    with open(path, "r", encoding="utf-8") as f:
      data = json.load(f)
  except FileNotFoundError:
    raise DeviceProfileError(f"Device profile file not found: {path}") from None
  except json.JSONDecodeError as e:
    raise DeviceProfileError(
        f"Device profile file {path} is not valid JSON: {e}") from None
  if not isinstance(data, dict) or data.get("format") != FORMAT:
    raise DeviceProfileError(
        f"{path}: expected a JSON object with \"format\": \"{FORMAT}\" and a "
        "\"devices\" object; see tflite_tl/devices/devices.json.")
  devices = data.get("devices")
  if not isinstance(devices, dict):
    raise DeviceProfileError(f"{path}: \"devices\" must be an object.")
  return {name: _parse_device(name, entry, path)
          for name, entry in devices.items()}


def _env_files() -> Sequence[str]:
  value = os.environ.get(ENV_VAR, "")
  return [p for p in value.split(os.pathsep) if p]


def load_devices(extra_files: Optional[Iterable[str]] = None
                 ) -> Dict[str, Device]:
  """Returns every board by name: shipped, then $TFLITE_TL_DEVICES, then extra."""
  devices = _read_file(_SHIPPED)
  for path in list(_env_files()) + list(extra_files or ()):
    devices.update(_read_file(path))
  return dict(sorted(devices.items()))


def list_devices(extra_files: Optional[Iterable[str]] = None) -> Sequence[str]:
  return list(load_devices(extra_files))


def get_device(name: str, extra_files: Optional[Iterable[str]] = None
               ) -> Device:
  """Returns the named board or raises UnknownDeviceError listing the known ones."""
  devices = load_devices(extra_files)
  if name not in devices:
    raise UnknownDeviceError(
        f"Unknown device '{name}'. Known devices: {', '.join(devices)}. "
        f"Add your board to a JSON file in the format of {_SHIPPED} and pass "
        f"it with --devices_file or the {ENV_VAR} environment variable.")
  return devices[name]
