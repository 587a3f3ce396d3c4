"""TinyTrain's multi-objective layer score.

    s_i = P_i / ( (|W_i| / max_l |W_l|) * (M_i / max_l M_l) )

with P_i the layer's Fisher potential, |W_i| its kernel parameters and M_i
its forward MACs, the maxima over the candidate layers (Kwon et al., ICML
2024, Sec. 3.2): a layer scores high when its channels matter for the task
and it is cheap in parameters and compute.
"""
from typing import Dict, Mapping, Sequence

from tflite_tl.sparse import inventory as inventory_lib


def relative_sizes(names: Sequence[str],
                   inventory: inventory_lib.Inventory) -> Dict[str, float]:
  """``{layer: (|W_i|/max|W|)(M_i/max M)}``, the maxima over ``names``: the
  score's denominator."""
  info = inventory_lib.by_name(inventory)
  max_params = max(info[n].params for n in names)
  max_macs = max(info[n].macs for n in names)
  relative = {}
  for name in names:
    size = (info[name].params / max_params) * (info[name].macs / max_macs)
    if size <= 0:
      raise ValueError(f"layer '{name}' has no parameters or MACs; it cannot "
                       "be scored.")
    relative[name] = size
  return relative


def layer_scores(potentials: Mapping[str, float],
                 inventory: inventory_lib.Inventory) -> Dict[str, float]:
  """``{layer: s_i}`` for the layers in ``potentials`` (candidates)."""
  names = list(potentials)
  if not names:
    return {}
  relative = relative_sizes(names, inventory)
  return {name: float(potentials[name]) / relative[name] for name in names}


def ranked(scores: Mapping[str, float],
           inventory: inventory_lib.Inventory):
  """Layer names by score, highest first; ties in forward order."""
  order = {n: i for i, n in enumerate(inventory.names())}
  return sorted(scores, key=lambda n: (-scores[n], order[n]))
