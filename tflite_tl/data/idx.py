"""Reader for the IDX format of (Fashion-)MNIST (optionally gzip-compressed).

Layout (big-endian): two zero bytes, a type code (0x08 = uint8), the number of
dimensions, one uint32 per dimension, then the raw array.
"""
import gzip

import numpy as np

_UINT8 = 0x08


def read_idx(path: str) -> np.ndarray:
  """The uint8 array stored in an IDX file (``.gz`` files are decompressed)."""
  opener = gzip.open if path.endswith(".gz") else open
  with opener(path, "rb") as f:
    data = f.read()
  if len(data) < 4 or data[0] != 0 or data[1] != 0:
    raise ValueError(f"{path}: not an IDX file (bad magic number).")
  if data[2] != _UINT8:
    raise ValueError(f"{path}: IDX type code 0x{data[2]:02x} is not supported "
                     "(only 0x08, uint8).")
  ndim = data[3]
  header = 4 + 4 * ndim
  shape = tuple(int(d) for d in np.frombuffer(data, ">u4", ndim, offset=4))
  if len(data) - header != int(np.prod(shape)):
    raise ValueError(f"{path}: IDX payload has {len(data) - header} bytes, "
                     f"shape {shape} needs {int(np.prod(shape))}.")
  return np.frombuffer(data, np.uint8, offset=header).reshape(shape)
