"""Builtin operator options and TL_* custom options for the graph writer."""
from typing import Optional

from flatbuffers import flexbuffers
from tensorflow.lite.python import schema_py_generated as schema

from tflite_tl.kernels import tflm_ops

Op = schema.BuiltinOperator
Options = schema.BuiltinOptions
_ACTIVATIONS = {
    None: schema.ActivationFunctionType.NONE,
    "linear": schema.ActivationFunctionType.NONE,
    "relu": schema.ActivationFunctionType.RELU,
    "relu6": schema.ActivationFunctionType.RELU6,
}
_PADDING = {"SAME": schema.Padding.SAME, "VALID": schema.Padding.VALID}


def activation_code(activation: Optional[str]) -> int:
  return _ACTIVATIONS[activation]


def conv2d(stride: int, padding: str, activation: Optional[str] = None):
  o = schema.Conv2DOptionsT()
  o.padding = _PADDING[padding]
  o.strideH = o.strideW = int(stride)
  o.dilationHFactor = o.dilationWFactor = 1
  o.fusedActivationFunction = activation_code(activation)
  return o, Options.Conv2DOptions


def depthwise_conv2d(stride: int, padding: str,
                     activation: Optional[str] = None):
  o = schema.DepthwiseConv2DOptionsT()
  o.padding = _PADDING[padding]
  o.strideH = o.strideW = int(stride)
  o.depthMultiplier = 1
  o.dilationHFactor = o.dilationWFactor = 1
  o.fusedActivationFunction = activation_code(activation)
  return o, Options.DepthwiseConv2DOptions


def fully_connected(activation: Optional[str] = None,
                    keep_num_dims: bool = False):
  o = schema.FullyConnectedOptionsT()
  o.fusedActivationFunction = activation_code(activation)
  o.weightsFormat = schema.FullyConnectedOptionsWeightsFormat.DEFAULT
  o.keepNumDims = bool(keep_num_dims)
  return o, Options.FullyConnectedOptions


def add(activation: Optional[str] = None):
  o = schema.AddOptionsT()
  o.fusedActivationFunction = activation_code(activation)
  return o, Options.AddOptions


def mul(activation: Optional[str] = None):
  o = schema.MulOptionsT()
  o.fusedActivationFunction = activation_code(activation)
  return o, Options.MulOptions


def sub(activation: Optional[str] = None):
  o = schema.SubOptionsT()
  o.fusedActivationFunction = activation_code(activation)
  return o, Options.SubOptions


def pool2d(filter_hw, stride_hw, padding: str,
           activation: Optional[str] = None):
  o = schema.Pool2DOptionsT()
  o.padding = _PADDING[padding]
  o.strideH, o.strideW = (int(s) for s in stride_hw)
  o.filterHeight, o.filterWidth = (int(f) for f in filter_hw)
  o.fusedActivationFunction = activation_code(activation)
  return o, Options.Pool2DOptions


def reshape(new_shape):
  o = schema.ReshapeOptionsT()
  o.newShape = [int(d) for d in new_shape]
  return o, Options.ReshapeOptions


def resize_bilinear(align_corners: bool, half_pixel_centers: bool):
  o = schema.ResizeBilinearOptionsT()
  o.alignCorners = bool(align_corners)
  o.halfPixelCenters = bool(half_pixel_centers)
  return o, Options.ResizeBilinearOptions


def pad():
  return schema.PadOptionsT(), Options.PadOptions


def gather(axis: int):
  o = schema.GatherOptionsT()
  o.axis = int(axis)
  o.batchDims = 0
  return o, Options.GatherOptions


def softmax(beta: float = 1.0):
  o = schema.SoftmaxOptionsT()
  o.beta = float(beta)
  return o, Options.SoftmaxOptions


def quantize():
  return schema.QuantizeOptionsT(), Options.QuantizeOptions


def dequantize():
  return schema.DequantizeOptionsT(), Options.DequantizeOptions


def tl(op_name: str, **options) -> bytes:
  """custom_options of a TL_* op, checked against its contract when the op is
  in :data:`tflite_tl.kernels.tflm_ops.OPS`."""
  if op_name in tflm_ops.OPS:
    return tflm_ops.custom_options(op_name, **options)
  return bytes(flexbuffers.Dumps(options)) if options else b""
