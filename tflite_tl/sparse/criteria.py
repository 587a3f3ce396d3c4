"""How the channels inside a chosen layer are ranked.

``fisher`` (TinyTrain): by Fisher potential Delta_c, highest first.
``l2`` (the "magnitude" criterion of MIT's sparse update): by the L2 norm of
the kernel slice the channel indexes, largest first. ``random``: a seeded
permutation, different per layer. Ties keep the lower channel index first,
so every ranking is deterministic.
"""
from typing import Optional

import numpy as np

FISHER, L2, RANDOM = "fisher", "l2", "random"
CRITERIA = (FISHER, L2, RANDOM)
_KERNEL_AXIS = {"input": 2, "output": 3, "channels": 2}


def check_criterion(criterion: str) -> str:
  if criterion not in CRITERIA:
    raise ValueError(f"Unknown channel criterion {criterion!r}; choose one of "
                     f"{', '.join(CRITERIA)}.")
  return criterion


def kernel_slice_norms(kernel: np.ndarray, channel_axis: str) -> np.ndarray:
  """L2 norm of each slice of ``kernel`` along the channel axis."""
  axis = _KERNEL_AXIS[channel_axis]
  kernel = np.asarray(kernel, np.float64)
  moved = np.moveaxis(kernel, axis, 0).reshape(kernel.shape[axis], -1)
  return np.sqrt(np.square(moved).sum(axis=1))


def _descending(values: np.ndarray) -> np.ndarray:
  # Stable sort of -values: equal values keep the lower index first.
  return np.argsort(-np.asarray(values, np.float64), kind="stable")


def rank_channels(criterion: str, *, channels: int,
                  potentials: Optional[np.ndarray] = None,
                  kernel: Optional[np.ndarray] = None,
                  channel_axis: str = "input", seed: int = 0,
                  layer_index: int = 0) -> np.ndarray:
  """Channel indices of one layer, best first, by ``criterion``.

  Args:
    criterion: ``"fisher"``, ``"l2"`` or ``"random"``.
    channels: channels on the axis.
    potentials: Delta_c per channel (``fisher``).
    kernel: the layer's kernel (``l2``).
    channel_axis: ``"input"``, ``"output"`` or ``"channels"`` (``l2``).
    seed, layer_index: seed the permutation (``random``).
  """
  check_criterion(criterion)
  if criterion == FISHER:
    if potentials is None or len(potentials) != channels:
      raise ValueError("rank_channels('fisher') needs one potential per "
                       f"channel ({channels}).")
    return _descending(potentials)
  if criterion == L2:
    if kernel is None:
      raise ValueError("rank_channels('l2') needs the layer's kernel.")
    norms = kernel_slice_norms(kernel, channel_axis)
    if len(norms) != channels:
      raise ValueError(f"kernel has {len(norms)} channels on the "
                       f"{channel_axis} axis, expected {channels}.")
    return _descending(norms)
  return np.random.RandomState([seed, layer_index]).permutation(channels)
