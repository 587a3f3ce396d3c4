"""Device fit check: arenas plus a stated margin against RAM, models against flash.

On the board the trainer keeps two TFLM interpreters alive at once (the train
step and the inference model), so both arenas count. Beside the arena, the
sample buffer and the variable scratch, the firmware's other globals take RAM
too (``firmware_globals``): the App and trainer objects, the two
interpreters and their op resolvers, TFLM's and the C library's statics.
The export counts them as measured on the linked firmware when it was linked
(``--instruction_counts``), else as a modelled allowance per target family.
The margin covers the rest: stack, heap, the framework (mbed OS, FreeRTOS,
WiFi/BLE stacks) and fragmentation. Flash holds both models, the two
persistence slots and the firmware itself, whose size is a stated reserve.
"""
import dataclasses
from typing import List, Mapping, Optional, Sequence, Tuple

from tflite_tl.devices import Device
from tflite_tl.firmware import sample_store

DEFAULT_SRAM_MARGIN = 0.10
DEFAULT_FLASH_RESERVE = 256 * 1024

# RAM of the firmware's globals beyond the arena, the sample buffer and the
# variable scratch, per target family (bytes). Measured on the exported App
# linked for Cortex-M4F (`arm-none-eabi-size -A`, .data + .bss minus those
# three; docs/firmware.md): 4,800 B with a 22-op resolver (tl kernels) and
# 4,784 B with 34 ops (builtin) -- newlib's reentrancy, malloc and locale
# state (about 2.7 KB), the App and trainer objects with the op resolver
# (about 36 B per op), TL_* registrations (28 B each) and padding. The
# allowance adds room for about 37 more ops. Xtensa runs the same C++ with
# 32-bit pointers, and ESP-IDF's own globals are outside the profile's usable
# SRAM; unknown families get the same figure. Stack, heap and the framework
# are the SRAM margin's.
FIRMWARE_GLOBALS_ALLOWANCE = {
    "cortex-m": 6 * 1024,
    "xtensa": 6 * 1024,
    "other": 6 * 1024,
}
FIRMWARE_GLOBALS = "firmware globals"
# The RAM consumer of the App's samples when they live in RAM
# (package.sample_buffer_consumer).
SAMPLE_BUFFER = "sample buffer"
#: Flash consumer name prefix of the sample ring (samples in flash).
SAMPLE_AREA = "sample area"
#: Flash consumer name prefix of the trained parameters' save slots.
PARAMETER_SLOTS = "parameter slots"


class DoesNotFitError(RuntimeError):
  """The export does not fit the device; the message says what to change."""
  # Printed whole by the CLIs: the bytes, the biggest consumers and the fixes
  # are the message.
  multiline = True

  def __init__(self, message: str, fit: Optional["FitResult"] = None):
    super().__init__(message)
    self.fit = fit  # the check's figures, when a fit check raised it


@dataclasses.dataclass(frozen=True)
class FitResult:
  device: str
  ram_kind: str
  ram_needed: int
  ram_available: int
  ram_margin_bytes: int
  flash_needed: int
  flash_available: int
  flash_reserve: int
  ram_consumers: Tuple[Tuple[str, int], ...]
  flash_consumers: Tuple[Tuple[str, int], ...]

  @property
  def ram_fits(self) -> bool:
    return self.ram_needed <= self.ram_available

  @property
  def flash_fits(self) -> bool:
    return self.flash_needed <= self.flash_available

  @property
  def fits(self) -> bool:
    return self.ram_fits and self.flash_fits

  def to_dict(self) -> dict:
    d = dataclasses.asdict(self)
    d["ram_consumers"] = [list(c) for c in self.ram_consumers]
    d["flash_consumers"] = [list(c) for c in self.flash_consumers]
    d.update(ram_fits=self.ram_fits, flash_fits=self.flash_fits,
             fits=self.fits)
    return d



def flash_consumer_bytes(result: FitResult, prefix: str) -> int:
  """Bytes of ``result``'s flash consumers whose names start with ``prefix``
  (SAMPLE_AREA, PARAMETER_SLOTS: their names end with a count)."""
  return sum(b for name, b in result.flash_consumers
             if name.startswith(prefix))

def target_family(device: Device) -> str:
  """"cortex-m", "xtensa" or "other", from the profile's MCU text."""
  mcu = (device.mcu or "").lower()
  if "cortex-m" in mcu:
    return "cortex-m"
  if "xtensa" in mcu:
    return "xtensa"
  return "other"


@dataclasses.dataclass(frozen=True)
class FirmwareGlobals:
  """RAM of the firmware's other globals, and where the figure comes from."""
  bytes: int
  measured: bool  # True: from the linked ELF; False: the family's allowance
  family: str

  @property
  def consumer(self) -> str:
    """The fit check's name of this consumer (says measured or modelled)."""
    how = ("measured, linked firmware" if self.measured
           else f"modelled, {self.family} allowance")
    return f"{FIRMWARE_GLOBALS} ({how})"

  def to_dict(self) -> dict:
    return dataclasses.asdict(self) | {"consumer": self.consumer}


def firmware_globals(device: Device, measured: Optional[int] = None
                     ) -> FirmwareGlobals:
  """The measured figure when given, else the device family's allowance."""
  family = target_family(device)
  if measured is not None:
    if measured < 0:
      raise ValueError(f"measured firmware globals must be >= 0, got "
                       f"{measured}.")
    return FirmwareGlobals(int(measured), True, family)
  return FirmwareGlobals(FIRMWARE_GLOBALS_ALLOWANCE[family], False, family)


def _kb(n: int) -> str:
  return f"{n / 1024:.1f} KB"


def check_fit(device: Device, *, ram_consumers: Mapping[str, int],
              flash_consumers: Mapping[str, int],
              sram_margin: float = DEFAULT_SRAM_MARGIN,
              flash_reserve: int = DEFAULT_FLASH_RESERVE,
              use_external_ram: bool = False) -> FitResult:
  """Compares what the export needs with what ``device`` offers.

  ``ram_consumers``: bytes that must live in RAM at once (arenas, buffers).
  ``sram_margin``: fraction of the RAM kept free for stack and framework.
  ``flash_reserve``: bytes of flash kept for the firmware (TFLM, framework).
  """
  if not 0.0 <= sram_margin < 1.0:
    raise ValueError(f"sram_margin must be in [0, 1), got {sram_margin}.")
  if flash_reserve < 0:
    raise ValueError(f"flash_reserve must be >= 0, got {flash_reserve}.")
  capacity = device.arena_capacity(use_external_ram)
  margin = int(round(capacity * sram_margin))
  ram = tuple(sorted(ram_consumers.items(), key=lambda kv: (-kv[1], kv[0])))
  flash = tuple(sorted(flash_consumers.items(), key=lambda kv: (-kv[1], kv[0])))
  return FitResult(
      device=device.name,
      ram_kind=device.external_ram_kind if use_external_ram else "SRAM",
      ram_needed=sum(ram_consumers.values()),
      ram_available=capacity - margin,
      ram_margin_bytes=margin,
      flash_needed=sum(flash_consumers.values()),
      flash_available=max(device.flash_bytes - flash_reserve, 0),
      flash_reserve=flash_reserve,
      ram_consumers=ram, flash_consumers=flash)


# Methods from the lightest training memory up (TinyTL, Table 2).
LIGHTER_METHODS = ("ft_last", "tinytl_b", "tinytl_l", "tinytl_lb",
                   "ft_norm_last", "ft_full")


def _suggestions(device: Device, result: FitResult,
                 alternatives: Sequence[str], batch: Optional[int],
                 method: Optional[str]) -> List[str]:
  tips = []
  if not result.ram_fits:
    if batch is None or batch > 1:
      tips.append("lower --batch (activations stored for the backward pass "
                  "scale with the batch)")
    tips.append("lower --resolution (activation memory scales with its "
                "square)")
    lighter = (LIGHTER_METHODS[:LIGHTER_METHODS.index(method)]
               if method in LIGHTER_METHODS else LIGHTER_METHODS[:3])
    if lighter:
      tips.append("choose a lighter --method (" + ", ".join(lighter) +
                  "; bias-only updates need no stored input activations)")
    samples = dict(result.ram_consumers).get(SAMPLE_BUFFER, 0)
    # Named when dropping the buffer would fit, or it is a quarter of it.
    if samples and (samples >= result.ram_needed - result.ram_available
                    or 4 * samples >= result.ram_needed):
      tip = (f"lower --max_samples (the sample buffer keeps every collected "
             f"image in RAM: {samples} B)")
      if sample_store.board_has_storage(device):
        tip += (" or keep the samples in flash with --sample_storage=flash "
                "(RAM then holds one batch)")
      tips.append(tip)
    if device.has_external_ram and result.ram_kind == "SRAM":
      tips.append(f"place the arena in {device.external_ram_kind} with "
                  "--arena_in_external_ram")
  if not result.flash_fits:
    over = result.flash_needed - result.flash_available
    area = flash_consumer_bytes(result, SAMPLE_AREA)
    if area > over:
      tips.append(f"lower --max_samples (the samples' area in flash is "
                  f"{area} B, {over} B more than fits)")
    slots = flash_consumer_bytes(result, PARAMETER_SLOTS)
    if slots > over:
      tip = (f"train fewer parameters (the board keeps two copies of them in "
             f"flash, {slots} B of parameter slots)")
      if method == "tinytrain":
        tip += (": a smaller --memory_budget, or none to select under the "
                "board's, which selects again on a flash miss")
      tips.append(tip)
    tips.append("use a smaller backbone (--model) or lower --flash_reserve if "
                "your firmware is smaller than the reserve")
  if alternatives:
    tips.append("use a board with more memory: " + ", ".join(alternatives))
  return tips


def explain(device: Device, result: FitResult,
            alternatives: Optional[Sequence[str]] = None,
            batch: Optional[int] = None, method: Optional[str] = None) -> str:
  """A message naming the device, bytes needed/available, top consumers, fixes."""
  lines = []
  if not result.ram_fits:
    lines.append(
        f"Does not fit {device.name} ({device.display_name}): needs "
        f"{result.ram_needed} bytes ({_kb(result.ram_needed)}) of "
        f"{result.ram_kind}, {result.ram_available} bytes "
        f"({_kb(result.ram_available)}) available after a "
        f"{result.ram_margin_bytes}-byte margin.")
    top = ", ".join(f"{n} {_kb(b)}" for n, b in result.ram_consumers[:3])
    lines.append(f"  Biggest RAM consumers: {top}.")
  if not result.flash_fits:
    lines.append(
        f"Does not fit {device.name} ({device.display_name}) flash: needs "
        f"{result.flash_needed} bytes ({_kb(result.flash_needed)}), "
        f"{result.flash_available} bytes ({_kb(result.flash_available)}) "
        f"available after a {result.flash_reserve}-byte firmware reserve.")
    top = ", ".join(f"{n} {_kb(b)}" for n, b in result.flash_consumers[:3])
    lines.append(f"  Biggest flash consumers: {top}.")
  tips = _suggestions(device, result, list(alternatives or ()), batch, method)
  if tips:
    lines.append("  To fix: " + "; ".join(tips) + ".")
  return "\n".join(lines)


def boards_that_fit(devices: Mapping[str, Device], ram_needed: int,
                    flash_needed: int, sram_margin: float,
                    flash_reserve: int) -> List[str]:
  """Names of boards whose SRAM (or external RAM) and flash would suffice."""
  out = []
  for name, dev in devices.items():
    for external in ((False, True) if dev.has_external_ram else (False,)):
      cap = dev.arena_capacity(external)
      if (ram_needed <= cap - int(round(cap * sram_margin)) and
          flash_needed <= dev.flash_bytes - flash_reserve):
        out.append(name + (f" (arena in {dev.external_ram_kind})"
                           if external else ""))
        break
  return out


def require_fit(device: Device, result: FitResult,
                devices: Optional[Mapping[str, Device]] = None,
                sram_margin: float = DEFAULT_SRAM_MARGIN,
                batch: Optional[int] = None,
                method: Optional[str] = None) -> None:
  """Raises DoesNotFitError with the full explanation when it does not fit."""
  if result.fits:
    return
  alternatives = []
  if devices:
    alternatives = [a for a in boards_that_fit(
        devices, result.ram_needed, result.flash_needed, sram_margin,
        result.flash_reserve) if not a.startswith(device.name + " ")
                    and a != device.name]
  raise DoesNotFitError(explain(device, result, alternatives, batch, method),
                        result)
