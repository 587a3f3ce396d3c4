"""Sparse update: which layers and channels train, under memory and compute.

``select`` is TinyTrain's task-adaptive selection (Fisher potentials on the
user's samples, the multi-objective layer score, greedy layers and top
channels under the budgets, or ``allocation="marginal"``: the most Fisher
potential per unit of budget); ``sparse_update_scheme`` the static scheme of
MIT's sparse update. Both return a :class:`Selection` (plain data) that the
rewrite applies (``tflite_tl.rewrite.apply_method(model, "tinytrain" or
"sparse_update", ...)``). All byte and MAC figures are modelled (analytic).
"""
from tflite_tl.sparse.cost import CostModel
from tflite_tl.sparse.cost import SchemeCost
from tflite_tl.sparse.criteria import CRITERIA
from tflite_tl.sparse.criteria import kernel_slice_norms
from tflite_tl.sparse.criteria import rank_channels
from tflite_tl.sparse.fisher import channel_potentials
from tflite_tl.sparse.fisher import layer_potentials
from tflite_tl.sparse.inventory import Inventory
from tflite_tl.sparse.inventory import LayerInfo
from tflite_tl.sparse.inventory import model_inventory
from tflite_tl.sparse.scoring import layer_scores
from tflite_tl.sparse.marginal import allocate
from tflite_tl.sparse.select import ALLOCATIONS
from tflite_tl.sparse.select import build_selection
from tflite_tl.sparse.select import BudgetError
from tflite_tl.sparse.select import greedy
from tflite_tl.sparse.select import select
from tflite_tl.sparse.select import smallest_scheme
from tflite_tl.sparse.selection import LayerChoice
from tflite_tl.sparse.selection import Selection
from tflite_tl.sparse.static_scheme import sparse_update_scheme
