"""Op lists of .tflite files and the TFLM op-resolver code that registers them.

Ops are counted by the package's one flatbuffer reader,
``tflite_tl.flatbuffer.reader`` (Flex ops as ``FLEX:<op>``, custom ops as
``CUSTOM:<name>``), so the export's op list and the lowering's builtin check
never disagree. Every subgraph counts: the CALL_ONCE initialisation subgraph
of a training model has its own ops (VAR_HANDLE, ASSIGN_VARIABLE) that must
be registered too.
"""
import collections
from typing import Dict, Iterable, Mapping, Optional, Sequence, Tuple

from tflite_tl.flatbuffer.reader import op_counts

# BuiltinOperator name -> MicroMutableOpResolver method (checked against
# tensorflow/lite/micro/micro_mutable_op_resolver.h). Names are not a mechanical
# CamelCase of the enum (ADD_N -> AddAddN, SPACE_TO_BATCH_ND ->
# AddSpaceToBatchNd, CUMSUM -> AddCumSum, LOGISTIC -> AddLogistic), hence a table.
RESOLVER_METHODS: Dict[str, str] = {
    "ABS": "AddAbs",
    "ADD": "AddAdd",
    "ADD_N": "AddAddN",
    "ARG_MAX": "AddArgMax",
    "ARG_MIN": "AddArgMin",
    "ASSIGN_VARIABLE": "AddAssignVariable",
    "AVERAGE_POOL_2D": "AddAveragePool2D",
    "BATCH_MATMUL": "AddBatchMatMul",
    "BATCH_TO_SPACE_ND": "AddBatchToSpaceNd",
    "BROADCAST_ARGS": "AddBroadcastArgs",
    "BROADCAST_TO": "AddBroadcastTo",
    "CALL_ONCE": "AddCallOnce",
    "CAST": "AddCast",
    "CEIL": "AddCeil",
    "CONCATENATION": "AddConcatenation",
    "CONV_2D": "AddConv2D",
    "COS": "AddCos",
    "CUMSUM": "AddCumSum",
    "DEPTH_TO_SPACE": "AddDepthToSpace",
    "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D",
    "DEQUANTIZE": "AddDequantize",
    "DIV": "AddDiv",
    "ELU": "AddElu",
    "EMBEDDING_LOOKUP": "AddEmbeddingLookup",
    "EQUAL": "AddEqual",
    "EXP": "AddExp",
    "EXPAND_DIMS": "AddExpandDims",
    "FILL": "AddFill",
    "FLOOR": "AddFloor",
    "FLOOR_DIV": "AddFloorDiv",
    "FLOOR_MOD": "AddFloorMod",
    "FULLY_CONNECTED": "AddFullyConnected",
    "GATHER": "AddGather",
    "GATHER_ND": "AddGatherNd",
    "GREATER": "AddGreater",
    "GREATER_EQUAL": "AddGreaterEqual",
    "HARD_SWISH": "AddHardSwish",
    "IF": "AddIf",
    "L2_NORMALIZATION": "AddL2Normalization",
    "L2_POOL_2D": "AddL2Pool2D",
    "LEAKY_RELU": "AddLeakyRelu",
    "LESS": "AddLess",
    "LESS_EQUAL": "AddLessEqual",
    "LOG": "AddLog",
    "LOG_SOFTMAX": "AddLogSoftmax",
    "LOGICAL_AND": "AddLogicalAnd",
    "LOGICAL_NOT": "AddLogicalNot",
    "LOGICAL_OR": "AddLogicalOr",
    "LOGISTIC": "AddLogistic",
    "MAX_POOL_2D": "AddMaxPool2D",
    "MAXIMUM": "AddMaximum",
    "MEAN": "AddMean",
    "MINIMUM": "AddMinimum",
    "MIRROR_PAD": "AddMirrorPad",
    "MUL": "AddMul",
    "NEG": "AddNeg",
    "NOT_EQUAL": "AddNotEqual",
    "PACK": "AddPack",
    "PAD": "AddPad",
    "PADV2": "AddPadV2",
    "PRELU": "AddPrelu",
    "QUANTIZE": "AddQuantize",
    "READ_VARIABLE": "AddReadVariable",
    "REDUCE_MAX": "AddReduceMax",
    "REDUCE_MIN": "AddReduceMin",
    "RELU": "AddRelu",
    "RELU6": "AddRelu6",
    "RESHAPE": "AddReshape",
    "RESIZE_BILINEAR": "AddResizeBilinear",
    "RESIZE_NEAREST_NEIGHBOR": "AddResizeNearestNeighbor",
    "REVERSE_V2": "AddReverseV2",
    "ROUND": "AddRound",
    "RSQRT": "AddRsqrt",
    "SELECT_V2": "AddSelectV2",
    "SHAPE": "AddShape",
    "SIN": "AddSin",
    "SLICE": "AddSlice",
    "SOFTMAX": "AddSoftmax",
    "SPACE_TO_BATCH_ND": "AddSpaceToBatchNd",
    "SPACE_TO_DEPTH": "AddSpaceToDepth",
    "SPLIT": "AddSplit",
    "SPLIT_V": "AddSplitV",
    "SQRT": "AddSqrt",
    "SQUARE": "AddSquare",
    "SQUARED_DIFFERENCE": "AddSquaredDifference",
    "SQUEEZE": "AddSqueeze",
    "STRIDED_SLICE": "AddStridedSlice",
    "SUB": "AddSub",
    "SUM": "AddSum",
    "SVDF": "AddSvdf",
    "TANH": "AddTanh",
    "TRANSPOSE": "AddTranspose",
    "TRANSPOSE_CONV": "AddTransposeConv",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM",
    "UNPACK": "AddUnpack",
    "VAR_HANDLE": "AddVarHandle",
    "WHILE": "AddWhile",
    "ZEROS_LIKE": "AddZerosLike",
}

CUSTOM_PREFIX = "CUSTOM:"


class UnsupportedOpError(ValueError):
  """A model uses an op that TFLM cannot register."""


def resolver_calls(models: Mapping[str, bytes],
                   custom_registrations: Optional[Mapping[str, str]] = None
                   ) -> Sequence[Tuple[str, str, Sequence[str]]]:
  """[(op, C++ call, [model names using it])], sorted by op name.

  ``custom_registrations`` maps a custom op name to the C++ expression of its
  ``TfLiteRegistration*`` (e.g. ``{"TL_FOO": "tltl::Register_TL_FOO()"}``).
  """
  custom_registrations = dict(custom_registrations or {})
  users = collections.defaultdict(list)
  for model_name in sorted(models):
    for op in op_counts(models[model_name]):
      users[op].append(model_name)
  calls = []
  for op in sorted(users):
    if op.startswith(CUSTOM_PREFIX):
      custom = op[len(CUSTOM_PREFIX):]
      if custom not in custom_registrations:
        raise UnsupportedOpError(
            f"Custom op '{custom}' in {', '.join(users[op])} has no TFLM "
            "registration: pass its C++ registration in custom_registrations, "
            "or lower the model to builtin ops only.")
      call = f'AddCustom("{custom}", {custom_registrations[custom]})'
    elif op in RESOLVER_METHODS:
      call = RESOLVER_METHODS[op] + "()"
    else:
      raise UnsupportedOpError(
          f"Op {op} in {', '.join(users[op])} has no MicroMutableOpResolver "
          "method in TFLM, so the model cannot run on the board. Change the "
          "layer that produces it (see the op list in REPORT.md).")
    calls.append((op, call, tuple(users[op])))
  return calls


def resolver_header(models: Mapping[str, bytes],
                    custom_registrations: Optional[Mapping[str, str]] = None,
                    namespace: str = "tltl",
                    includes: Sequence[str] = ()) -> str:
  """C++ header: ``OpResolver`` sized for, and ``RegisterOps`` adding,
  exactly the used ops. ``includes`` declare the custom registrations."""
  calls = resolver_calls(models, custom_registrations)
  lines = [
      "// Registers exactly the TFLM ops used by "
      + " and ".join(sorted(models)) + ".",
      "// Generated by tflite-tl; regenerate instead of editing.",
      "#ifndef TFLITE_TL_OP_RESOLVER_H_",
      "#define TFLITE_TL_OP_RESOLVER_H_",
      "",
      '#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"',
      *[f'#include "{h}"' for h in includes],
      "",
      f"namespace {namespace} {{",
      "",
      f"constexpr unsigned int kOpCount = {len(calls)};",
      "using OpResolver = tflite::MicroMutableOpResolver<kOpCount>;",
      "",
      "inline TfLiteStatus RegisterOps(OpResolver& resolver) {",
  ]
  for op, call, used_by in calls:
    lines.append(f"  // {op}: {', '.join(used_by)}")
    lines.append(f"  if (resolver.{call} != kTfLiteOk) return kTfLiteError;")
  lines += [
      "  return kTfLiteOk;",
      "}",
      "",
      f"}}  // namespace {namespace}",
      "",
      "#endif  // TFLITE_TL_OP_RESOLVER_H_",
      "",
  ]
  return "\n".join(lines)
