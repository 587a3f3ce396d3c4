"""Lowering of a model's training step to a TFLM-builtin-only .tflite.

``lower_model(model, batch_size=..., learning_rate=...)`` returns a
:class:`LoweredModel` with ``train_tflite`` (forward, loss, backward and SGD
update of ``model.trainable_weights`` in subgraph 0) and ``predict_tflite``
(the float forward pass reading the same parameter variables); with
``precision="int8"`` the frozen kernels are stored int8 in both
(:mod:`tflite_tl.lower.int8_constants`).
``quantize`` makes the int8 inference model (post-training quantization,
optionally after quantization-aware training).
"""
from tflite_tl.lower.builtins import TFLM_BUILTINS
from tflite_tl.lower.builtins import NonBuiltinOpError
from tflite_tl.lower.builtins import check_builtin_only
from tflite_tl.lower.builtins import non_builtin_ops
from tflite_tl.lower.builtins import op_counts
from tflite_tl.lower.check import check_lowerable
from tflite_tl.lower import extra_rules  # noqa: F401  registers its rules
from tflite_tl.lower.layers import LayerSite
from tflite_tl.lower.layers import UnsupportedLayerError
from tflite_tl.lower.layers import register_layer_rule
from tflite_tl.lower.layers import supported_layer_names
from tflite_tl.lower.lowering import INT8_CHUNK_ELEMENTS
from tflite_tl.lower.lowering import LoweredModel
from tflite_tl.lower.lowering import ParamSpec
from tflite_tl.lower.lowering import assign_to_keras
from tflite_tl.lower.lowering import lower_model
from tflite_tl.lower.lowering import read_params
from tflite_tl.lower.lowering import write_params
from tflite_tl.lower.module import TrainStepModule
from tflite_tl.lower.quantize import QuantizationError
from tflite_tl.lower.quantize import quantize_int8
