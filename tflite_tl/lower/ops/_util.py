"""Shape helpers shared by the primitives (static shapes only)."""
from typing import Tuple


def same_padding(size: int, kernel: int, stride: int,
                 dilation: int = 1) -> Tuple[int, int, int]:
  """(output size, pad before, pad after) of TF's SAME padding along one axis."""
  effective = (kernel - 1) * dilation + 1
  out = -(-size // stride)
  total = max((out - 1) * stride + effective - size, 0)
  return out, total // 2, total - total // 2


def valid_padding(size: int, kernel: int, stride: int,
                  dilation: int = 1) -> Tuple[int, int, int]:
  """(output size, 0, 0) of TF's VALID padding along one axis."""
  effective = (kernel - 1) * dilation + 1
  if size < effective:
    raise ValueError(
        f"VALID window of {effective} does not fit an input of size {size}.")
  return (size - effective) // stride + 1, 0, 0


def window_padding(padding: str, size: int, kernel: int, stride: int,
                   dilation: int = 1) -> Tuple[int, int, int]:
  """(output size, pad before, pad after) for ``padding`` "SAME" or "VALID"."""
  padding = padding.upper()
  if padding == "SAME":
    return same_padding(size, kernel, stride, dilation)
  if padding == "VALID":
    return valid_padding(size, kernel, stride, dilation)
  raise ValueError(f"padding must be SAME or VALID, got {padding!r}.")


def static_shape(tensor):
  """The fully known static shape of ``tensor`` as a list of ints."""
  shape = tensor.shape.as_list()
  if any(d is None for d in shape):
    raise ValueError(
        f"Lowering needs static shapes (fixed batch size); got {shape}.")
  return shape
