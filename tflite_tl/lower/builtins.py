"""Which ops a .tflite uses, and whether TFLM runs every one of them.

``TFLM_BUILTINS`` lists the builtin operators that TFLM's op resolver registers
(tensorflow/lite/micro/micro_mutable_op_resolver.h, as shipped in the
tflite-micro package this project pins). A model that contains any other
operator, a CUSTOM op or a Flex (SELECT_TF_OPS) op cannot run on stock TFLM.
"""
import collections
from typing import Dict, List

from tensorflow.lite.python import schema_py_generated as schema

TFLM_BUILTINS = frozenset("""
ABS ADD ADD_N_UNSUPPORTED ARG_MAX ARG_MIN ASSIGN_VARIABLE AVERAGE_POOL_2D
BATCH_MATMUL BATCH_TO_SPACE_ND BROADCAST_ARGS BROADCAST_TO CALL_ONCE CAST CEIL
CONCATENATION CONV_2D COS CUMSUM DEPTH_TO_SPACE DEPTHWISE_CONV_2D DEQUANTIZE
DETECTION_POSTPROCESS DIV ELU EMBEDDING_LOOKUP EQUAL EXP EXPAND_DIMS FILL FLOOR
FLOOR_DIV FLOOR_MOD FULLY_CONNECTED GATHER GATHER_ND GREATER GREATER_EQUAL
HARD_SWISH IF L2_NORMALIZATION L2_POOL_2D LEAKY_RELU LESS LESS_EQUAL LOG
LOGICAL_AND LOGICAL_NOT LOGICAL_OR LOGISTIC LOG_SOFTMAX MAXIMUM MAX_POOL_2D MEAN
MINIMUM MIRROR_PAD MUL NEG NOT_EQUAL PACK PAD PADV2 PRELU QUANTIZE READ_VARIABLE
REDUCE_MAX REDUCE_MIN RELU RELU6 RESHAPE RESIZE_BILINEAR RESIZE_NEAREST_NEIGHBOR
REVERSE_V2 ROUND RSQRT SELECT_V2 SHAPE SIN SLICE SOFTMAX SPACE_TO_BATCH_ND
SPACE_TO_DEPTH SPLIT SPLIT_V SQRT SQUARE SQUARED_DIFFERENCE SQUEEZE
STRIDED_SLICE SUB SUM SVDF TANH TRANSPOSE TRANSPOSE_CONV
UNIDIRECTIONAL_SEQUENCE_LSTM UNPACK VAR_HANDLE WHILE ZEROS_LIKE
""".split()) - {"ADD_N_UNSUPPORTED"}


class NonBuiltinOpError(ValueError):
  """The model uses an operator that stock TFLM does not run."""


_CODE_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items()
               if not k.startswith("_")}


def _op_names(tflite_bytes: bytes, subgraph: int = None) -> List[str]:
  model = schema.Model.GetRootAsModel(tflite_bytes, 0)
  names = []
  for si in range(model.SubgraphsLength()):
    if subgraph is not None and si != subgraph:
      continue
    sg = model.Subgraphs(si)
    for oi in range(sg.OperatorsLength()):
      code = model.OperatorCodes(sg.Operators(oi).OpcodeIndex())
      builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
      name = _CODE_NAMES.get(builtin, f"BUILTIN_{builtin}")
      if name == "CUSTOM":
        custom = code.CustomCode()
        custom = custom.decode() if custom else "?"
        name = (f"FLEX:{custom[4:]}" if custom.startswith("Flex")
                else f"CUSTOM:{custom}")
      names.append(name)
  return names


def op_counts(tflite_bytes: bytes, subgraph: int = None) -> Dict[str, int]:
  """{operator name: count} over all subgraphs (or one), sorted by name.

  Custom ops appear as ``CUSTOM:<name>``, Flex ops as ``FLEX:<TF op>``.
  """
  counts = collections.Counter(_op_names(tflite_bytes, subgraph))
  return dict(sorted(counts.items()))


def non_builtin_ops(tflite_bytes: bytes) -> List[str]:
  """Operators of the model that stock TFLM cannot run (sorted, unique)."""
  return sorted(op for op in op_counts(tflite_bytes)
                if op not in TFLM_BUILTINS)


def check_builtin_only(tflite_bytes: bytes, what: str = "model") -> None:
  """Raises NonBuiltinOpError naming every op TFLM does not run."""
  bad = non_builtin_ops(tflite_bytes)
  if bad:
    raise NonBuiltinOpError(
        f"The {what} uses operators that stock TFLM does not run: "
        f"{', '.join(bad)}. Every layer's backward pass must be built from "
        "TFLM builtins; see tflite_tl.lower.TFLM_BUILTINS.")
