"""Layout of the sample area the App keeps its samples in (flash mode).

Mirrors ``csrc/tl_samples.c``: a record is a 32-byte header and the image,
padded to 32 bytes; records are grouped in blocks of whole erase units (no
record straddles two), and the area has one block more than ``min_samples``
need, because wrapping erases a whole block (its oldest records) before the
first new record is written into it. The fit check models 4 KB erase units
(the nRF52840's flash pages and the ESP32's SPI-flash sectors).
"""
import dataclasses

from tflite_tl.devices import Device

HEADER_BYTES = 32
RECORD_ALIGN = 32
ERASE_UNIT = 4096
# sizeof(tl_samples_t) on a 32-bit target (12 words).
STORE_STATE_BYTES = 48
STORAGES = ("auto", "ram", "flash")


def _align(n: int, a: int) -> int:
  return (n + a - 1) // a * a


@dataclasses.dataclass(frozen=True)
class SampleArea:
  """The ring of sample records in flash (all sizes in bytes)."""
  image_bytes: int
  record_bytes: int
  block_bytes: int
  records_per_block: int
  num_blocks: int

  @property
  def bytes(self) -> int:
    return self.block_bytes * self.num_blocks

  @property
  def slots(self) -> int:
    return self.records_per_block * self.num_blocks

  @property
  def kept_after_wrap(self) -> int:
    """Samples the ring holds at least, once it has wrapped."""
    return self.slots - self.records_per_block + 1

  @property
  def ram_index_bytes(self) -> int:
    """The App's RAM index of the records (uint16 per slot) and the store."""
    return 2 * self.slots + STORE_STATE_BYTES


def sample_area(image_bytes: int, min_samples: int,
                erase_unit: int = ERASE_UNIT) -> SampleArea:
  """The area keeping at least ``min_samples`` images through a wrap."""
  if image_bytes < 1 or min_samples < 1:
    raise ValueError("image_bytes and min_samples must be >= 1.")
  record = _align(HEADER_BYTES + image_bytes, RECORD_ALIGN)
  block = _align(record, erase_unit)
  per_block = block // record
  return SampleArea(image_bytes, record, block, per_block,
                    -(-min_samples // per_block) + 1)


def board_has_storage(device: Device) -> bool:
  """The board has a storage backend (``TL_HAVE_STORAGE`` in
  csrc/tl_storage.h): Arduino mbed boards (internal flash through FlashIAP)
  and ESP32s (a data partition)."""
  return ("esp-idf" in device.frameworks or
          device.arduino_fqbn.startswith("arduino:mbed"))
