"""The parameter-persistence format of the generated code, mirrored in Python.

The board-side implementation is ``csrc/tl_persist.{h,c}`` (framework-free C,
shipped in every export). This module computes the schema id that ties a save
to one model's variable layout, and encodes/decodes storage images in the same
format, so host tools can prepare or inspect what a board stores.
"""
import os
import struct
import zlib
from typing import Iterable, Optional, Tuple

MAGIC = 0x31504C54  # "TLP1" as a little-endian u32
HEADER_BYTES = 32
CSRC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "csrc")
C_SOURCES = ("tl_persist.h", "tl_persist.c")


def schema_id(variables: Iterable) -> int:
  """CRC-32 of the ordered (name, dtype, shape) list of the saved variables.

  A board refuses to restore a save whose schema id differs, so parameters
  trained for one model never get loaded into another.
  """
  text = ";".join(f"{v.container}/{v.shared_name}:{v.dtype}:"
                  + "x".join(str(d) for d in v.shape) for v in variables)
  return zlib.crc32(text.encode("utf-8")) & 0xFFFFFFFF


def encode_slot(payload: bytes, sequence: int, schema: int,
                slot_size: int) -> bytes:
  """One slot's bytes: header (CRC last) + payload, padded with 0xFF."""
  if len(payload) > slot_size - HEADER_BYTES:
    raise ValueError(f"Payload of {len(payload)} bytes does not fit a slot of "
                     f"{slot_size} bytes ({HEADER_BYTES} for the header).")
  head = struct.pack("<IIIII", MAGIC, schema, sequence & 0xFFFFFFFF,
                     len(payload), zlib.crc32(payload) & 0xFFFFFFFF)
  head += b"\xff" * 8
  head += struct.pack("<I", zlib.crc32(head) & 0xFFFFFFFF)
  return (head + payload).ljust(slot_size, b"\xff")


def _slot(image: bytes, index: int, slot_size: int
          ) -> Optional[Tuple[int, int, bytes]]:
  raw = image[index * slot_size:(index + 1) * slot_size]
  if len(raw) < HEADER_BYTES:
    return None
  magic, schema, seq, length, pcrc = struct.unpack_from("<IIIII", raw)
  (hcrc,) = struct.unpack_from("<I", raw, 28)
  if magic != MAGIC or hcrc != zlib.crc32(raw[:28]) & 0xFFFFFFFF:
    return None
  if length > slot_size - HEADER_BYTES:
    return None
  payload = raw[HEADER_BYTES:HEADER_BYTES + length]
  if zlib.crc32(payload) & 0xFFFFFFFF != pcrc:
    return None
  return seq, schema, payload


def decode_image(image: bytes, slot_size: int
                 ) -> Optional[Tuple[int, int, bytes]]:
  """(sequence, schema id, payload) of the newest valid save, or None."""
  slots = [s for s in (_slot(image, 0, slot_size), _slot(image, 1, slot_size))
           if s is not None]
  if not slots:
    return None
  if len(slots) == 1:
    return slots[0]
  a, b = slots
  # Serial-number arithmetic, as in tl_persist.c: sequences may wrap.
  delta = (b[0] - a[0]) & 0xFFFFFFFF
  return b if 0 < delta < 0x80000000 else a
