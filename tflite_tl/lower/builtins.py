"""Which ops a .tflite uses, and whether TFLM runs every one of them.

``TFLM_BUILTINS`` lists the builtin operators that TFLM's op resolver registers
(tensorflow/lite/micro/micro_mutable_op_resolver.h, as shipped in the
tflite-micro package this project pins). A model that contains any other
operator, a CUSTOM op or a Flex (SELECT_TF_OPS) op cannot run on stock TFLM.
"""
from typing import List

# One op reader for the whole package: the builtin check and the firmware's
# op resolver count the same ops (re-exported as tflite_tl.lower.op_counts).
from tflite_tl.flatbuffer.reader import op_counts

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
