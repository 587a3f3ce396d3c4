"""How a layer's channel count steps during an allocation.

Both allocations (``select.greedy``, ``marginal.allocate``) admit a layer
at ``min_channel_fraction`` of its channels (at least one), widen it by an
eighth of its channels at a time, and finally by one channel, so the two
spend a budget in the same units and differ only in the order of moves.
"""
import math

GROWTH_STEPS = 8  # coarse growth: an eighth of a layer's channels at a time


def admission_size(total: int, min_channel_fraction: float) -> int:
  """Channels a layer of ``total`` channels is admitted with."""
  return max(1, math.ceil(total * min_channel_fraction))


def growth_step(total: int, fine: bool) -> int:
  """Channels one widening adds: an eighth of ``total``, or one when
  ``fine``."""
  return 1 if fine else max(1, total // GROWTH_STEPS)
