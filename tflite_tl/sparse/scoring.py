"""TinyTrain's multi-objective layer score.

    s_i = P_i / ( (|W_i| / max_l |W_l|) * (M_i / max_l M_l) )

with P_i the layer's Fisher potential, |W_i| its kernel parameters and M_i
its forward MACs, the maxima over the candidate layers (Kwon et al., ICML
2024, Sec. 3.2): a layer scores high when its channels matter for the task
and it is cheap in parameters and compute.
"""
from typing import Dict, Mapping

from tflite_tl.sparse import inventory as inventory_lib


def layer_scores(potentials: Mapping[str, float],
                 inventory: inventory_lib.Inventory) -> Dict[str, float]:
  """``{layer: s_i}`` for the layers in ``potentials`` (candidates)."""
  info = inventory_lib.by_name(inventory)
  names = list(potentials)
  if not names:
    return {}
  max_params = max(info[n].params for n in names)
  max_macs = max(info[n].macs for n in names)
  scores = {}
  for name in names:
    relative = (info[name].params / max_params) * (info[name].macs / max_macs)
    if relative <= 0:
      raise ValueError(f"layer '{name}' has no parameters or MACs; it cannot "
                       "be scored.")
    scores[name] = float(potentials[name]) / relative
  return scores


def ranked(scores: Mapping[str, float],
           inventory: inventory_lib.Inventory):
  """Layer names by score, highest first; ties in forward order."""
  order = {n: i for i, n in enumerate(inventory.names())}
  return sorted(scores, key=lambda n: (-scores[n], order[n]))
