"""The TL_* TFLite Micro custom ops: tensor contracts, options, sources.

Single Python description of the firmware ops in ``tflm_kernels/tflm/``, for
code that emits them into a .tflite model (custom options are a flexbuffer
map, as TFLM's FlexbufferWrapper reads them) and for code that copies the
kernel sources into a firmware project.
"""
import dataclasses
import pathlib
from typing import Dict, List, Tuple

from flatbuffers import flexbuffers

KERNELS_DIR = pathlib.Path(__file__).resolve().parents[2] / "tflm_kernels"

_CONV_OPTIONS = {"padding": int, "stride_h": int, "stride_w": int}
_UPDATE_OPTIONS = {"learning_rate": float, "padding": int, "qas": bool, "stride_h": int,
                   "stride_w": int}
# The inputs of the in-place update ops, by position (absent ones -1): 8, or
# 9 with the fused input gradient (input_grad_filter and the grad_input
# output, both or neither).
_UPDATE_INPUTS = ("grad_output", "[mask]", "[input]", "[channels]", "[filter]", "[filter_q]",
                  "[bias]", "[bias_q]", "[input_grad_filter]")
_UPDATE_OUTPUTS = ("[grad_input]",)


@dataclasses.dataclass(frozen=True)
class TflmOpSpec:
  """One custom op. Inputs/outputs in brackets are optional: an absent
  optional input is tensor index -1 (kTfLiteOptionalTensor); trailing absent
  inputs of the input-gradient ops may also be left out."""
  name: str
  source: str  # file in tflm_kernels/tflm/
  inputs: Tuple[str, ...]
  outputs: Tuple[str, ...]
  options: Dict[str, type]
  doc: str


OPS: Dict[str, TflmOpSpec] = {s.name: s for s in [
    TflmOpSpec("TL_BIAS_GRAD", "bias_grad.cc", ("grad_output",), ("grad_bias",), {},
               "Bias gradient: grad_output summed over all axes but the last."),
    TflmOpSpec("TL_BIAS_GRAD_SGD", "bias_grad.cc", ("grad_output", "bias"), ("[new_bias]",),
               {"learning_rate": float},
               "Bias gradient fused with SGD; without an output the variable "
               "bias tensor is updated in place."),
    TflmOpSpec("TL_CONV_WGRAD_SPARSE", "conv_weight_grad.cc",
               ("input", "grad_output", "channels"), ("grad_filter",), _CONV_OPTIONS,
               "Conv2D weight gradient of the listed output channels, [K, kh, kw, Cin]; "
               "the input may be float32 or a saved int8 activation."),
    TflmOpSpec("TL_DEPTHWISE_WGRAD", "depthwise_weight_grad.cc", ("input", "grad_output"),
               ("grad_filter",), _CONV_OPTIONS,
               "DepthwiseConv2D weight gradient, [1, kh, kw, C*M]; float32 or int8 input."),
    TflmOpSpec("TL_CONV_INPUT_GRAD", "conv_input_grad.cc",
               ("grad_output", "filter", "[mask]"), ("grad_input",), _CONV_OPTIONS,
               "Conv2D (or FULLY_CONNECTED: rank-2 tensors) input gradient through an "
               "int8 (per-channel) or float filter; the optional 1-bit mask of the "
               "layer's output activation is applied to grad_output on the fly."),
    TflmOpSpec("TL_DEPTHWISE_INPUT_GRAD", "depthwise_input_grad.cc",
               ("grad_output", "filter", "[mask]"), ("grad_input",), _CONV_OPTIONS,
               "DepthwiseConv2D input gradient through an int8 or float filter, with "
               "the optional mask as TL_CONV_INPUT_GRAD."),
    TflmOpSpec("TL_DEPTHWISE_CONV", "depthwise_conv.cc", ("input", "filter", "[bias]"),
               ("output", "[mask]"), dict(_CONV_OPTIONS, activation=int),
               "DepthwiseConv2D forward (filter [1, kh, kw, C*M]) with the fused "
               "activation (0 none, 1 ReLU, 2 ReLU6) and, optionally, the 1-bit mask of "
               "its linear range on the output (as TL_RELU_MASK); no per-channel "
               "persistent buffers. Float, or int8 (per-channel int8 filter, int32 "
               "bias, int8 output): TFLM's int8 DEPTHWISE_CONV_2D value for value, "
               "its requantization multipliers computed per invoke into scratch."),
    TflmOpSpec("TL_INVERTED_RESIDUAL", "inverted_residual.cc",
               ("input", "[expand_filter]", "[expand_bias]", "depthwise_filter",
                "depthwise_bias", "project_filter", "project_bias"),
               ("output", "[expand_mask]", "[depthwise_mask]"),
               {"depthwise_activation": int, "depthwise_scale": float,
                "depthwise_zero_point": int, "expand_activation": int,
                "expand_padding": int, "expand_scale": float, "expand_stride_h": int,
                "expand_stride_w": int, "expand_zero_point": int, **_CONV_OPTIONS},
               "Frozen int8 inverted-residual block ([expand conv] -> kxk "
               "depthwise -> linear 1x1 project conv) streamed row by row: the "
               "expanded map lives only as a ring of kh rows in scratch, each "
               "computed from the expand window's input rows; bit-identical to "
               "TFLM's int8 CONV_2D -> DEPTHWISE_CONV_2D -> CONV_2D. The expand is "
               "any one-group conv, expand_filter [E, kh_e, kw_e, Cin], with its "
               "own expand_padding and expand_stride_h / _w (MobileNetV2's: 1x1, "
               "stride 1; a 3x3 stride-2 stem in front of a block without one); "
               "padding and stride_* are the depthwise's, on the expanded map. "
               "*_scale / *_zero_point: the quantization of the "
               "expanded map and of the depthwise output; activations 0 none, "
               "1 ReLU, 2 ReLU6. Mask outputs: none, or one per activated stage "
               "(expand, then depthwise): the 1-bit masks of the linear ranges "
               "TL_RELU_MASK would pack from the unfused int8 outputs, for a "
               "backward pass that crosses the frozen block."),
    TflmOpSpec("TL_INVERTED_RESIDUAL_INPUT_GRAD", "inverted_residual_input_grad.cc",
               ("grad_output", "[grad_output_mask]", "project_filter", "depthwise_filter",
                "[depthwise_mask]", "[expand_filter]", "[expand_mask]"), ("grad_input",),
               _CONV_OPTIONS,
               "Input gradient through a frozen int8 inverted-residual block (the "
               "backward of TL_INVERTED_RESIDUAL), streamed by rows (a ring of "
               "ceil(kh / stride) rows of the depthwise output gradient and one row "
               "of the expanded map's gradient in scratch) or, where that needs "
               "less scratch, by channel (one expanded channel's two planes), never "
               "a full expanded map; bit-identical to TL_CONV_INPUT_GRAD (project, with the "
               "optional grad_output_mask) -> TL_DEPTHWISE_INPUT_GRAD (depthwise_mask) "
               "-> TL_CONV_INPUT_GRAD (expand, expand_mask). Without expand_filter "
               "grad_input is the depthwise input gradient. Options are the "
               "depthwise's."),
    TflmOpSpec("TL_INVERTED_RESIDUAL_UPDATE", "inverted_residual_update.cc",
               ("grad_output", "[grad_output_mask]", "project_filter", "depthwise_filter",
                "[depthwise_mask]", "expand_filter", "[expand_mask]", "[input]",
                "[channels]", "[filter]", "[bias]", "[bias_q]", "[project_input]",
                "[project_channels]", "[project_master]", "[project_bias]",
                "[project_bias_q]"), ("[grad_input]",),
               dict(_UPDATE_OPTIONS, project_channel_axis=int),
               "The backward of an int8 inverted-residual block whose depthwise conv "
               "trains (frozen 1x1 expand -> depthwise -> linear 1x1 project), "
               "streamed as TL_INVERTED_RESIDUAL_INPUT_GRAD (by rows or by channel): "
               "grad_input through the step's starting depthwise filter, and from "
               "each depthwise output-gradient row or channel plane the weight sums of the chosen channels "
               "(input: the saved int8 depthwise input, all or only the chosen "
               "channels) and the bias sums, then TL_DEPTHWISE_UPDATE's in-place "
               "step (filter: the float master [1, kh, kw, K]; depthwise_filter, its "
               "int8 copy, re-quantized; bias with bias_q). Bit-identical to "
               "TL_CONV_INPUT_GRAD -> TL_DEPTHWISE_UPDATE (fused input gradient) -> "
               "TL_CONV_INPUT_GRAD, without their two expanded-width float maps. "
               "The project may train too (project_*: TL_CONV_UPDATE's input, "
               "channels, master, bias and bias_q of a 1x1 conv, channel axis "
               "project_channel_axis; project_filter is then its variable int8 "
               "copy): its step runs last, after its filter served the input "
               "gradient, as TL_CONV_UPDATE with the fused input gradient. "
               "Without grad_input (and without expand_filter, expand_mask) the "
               "backward stops at the depthwise: only the updates run, from dz "
               "streamed alone (the earliest trained block). "
               "Other options are the depthwise's."),
    TflmOpSpec("TL_CONV", "conv.cc", ("input", "filter", "[bias]"),
               ("output", "[mask]", "[filter_hat]"),
               dict(_CONV_OPTIONS, activation=int, epsilon=float, standardize=bool),
               "Conv2D forward (OHWI filter, grouped too), float or int8 as "
               "TL_DEPTHWISE_CONV (int8: TFLM's CONV_2D value for value), with the "
               "fused activation and optional mask of TL_DEPTHWISE_CONV; no per-channel "
               "persistent buffers. With standardize (float only), it first writes filter_hat "
               "(the last output) as TL_WEIGHT_STANDARDIZE does (epsilon) and "
               "convolves with it: a weight-standardised conv's forward in one op; "
               "without filter_hat it computes the standardised values on the fly "
               "from 3 floats of row statistics per output channel (scratch)."),
    TflmOpSpec("TL_RELU_MASK", "activation_mask.cc", ("x",), ("mask",), {"relu6": bool},
               "1-bit mask of ReLU's (or ReLU6's) linear range, LSB first."),
    TflmOpSpec("TL_MASKED_GRAD", "activation_mask.cc", ("grad_output", "mask"),
               ("grad_input",), {}, "grad_output where the mask bit is set, else 0."),
    TflmOpSpec("TL_SGD_UPDATE", "sgd.cc", ("weights", "grad", "[velocity]"),
               ("[new_weights]", "[new_velocity]"),
               {"learning_rate": float, "momentum": float},
               "SGD (Keras arithmetic); without outputs the variable tensors are "
               "updated in place."),
    TflmOpSpec("TL_CONV_UPDATE", "conv_update.cc", _UPDATE_INPUTS, _UPDATE_OUTPUTS,
               dict(_UPDATE_OPTIONS, channel_axis=int),
               "In-place SGD step of a Conv2D / FULLY_CONNECTED layer's trained "
               "parameters (variable tensors): the chosen output (channel_axis 0) or "
               "input (1) channels of the filter, or of the float master of an int8 "
               "filter_q (re-quantized after the step), and the bias (all channels) "
               "with its int32 copy. qas=False scales integer-domain gradients by "
               "scale^2. With input_grad_filter (the forward's int8 or float filter) "
               "it first writes grad_input as TL_CONV_INPUT_GRAD does (the step's "
               "starting parameters): one op per layer and step."),
    TflmOpSpec("TL_DEPTHWISE_UPDATE", "depthwise_update.cc", _UPDATE_INPUTS, _UPDATE_OUTPUTS,
               _UPDATE_OPTIONS,
               "TL_CONV_UPDATE for DepthwiseConv2D (depth multiplier 1): filter "
               "[1, kh, kw, C], channels index C; the fused input gradient is "
               "TL_DEPTHWISE_INPUT_GRAD's."),
    TflmOpSpec("TL_WS_CONV_UPDATE", "ws_conv_update.cc", _UPDATE_INPUTS, _UPDATE_OUTPUTS,
               {"epsilon": float, "learning_rate": float, "padding": int, "stride_h": int,
                "stride_w": int},
               "In-place SGD step of a weight-standardised conv (forward: TL_CONV with "
               "standardize): per output channel the weight gradient of w_hat, the "
               "standardisation's vector-Jacobian product from the raw filter (input 4) "
               "and the step, one filter row of scratch; the bias as TL_CONV_UPDATE. "
               "Inputs as TL_CONV_UPDATE's, float, the whole filter trained (no "
               "channels, filter_q, bias_q); with input_grad_filter (TL_CONV's "
               "filter_hat) it first writes grad_input as TL_CONV_INPUT_GRAD does; "
               "input_grad_filter may be the raw filter itself (input 4 again): the "
               "op then computes the standardised values on the fly from it and its "
               "row statistics (3 floats per output channel of scratch), so the "
               "forward's filter_hat need not live until the backward pass."),
    TflmOpSpec("TL_DEPTHWISE_CHAIN_UPDATE", "depthwise_chain_update.cc",
               ("grad_output", "[mask]", "filter", "[bias]", "[bias_q]", "[up_mask]",
                "up_bias", "[up_bias_q]", "[up_filter]", "[ds_filter]", "[ds_bias]",
                "[ds_bias_q]"), ("[up_grad_input]",),
               dict(_UPDATE_OPTIONS, in_h=int, in_w=int),
               "The backward pass of a bias-trained DepthwiseConv2D (depth multiplier "
               "1) and of the bias-trained layer feeding it, in one op: the depthwise "
               "input gradient is computed row by row into a scratch row and handed "
               "to the upstream's backward (its activation mask, its bias step, and, "
               "with up_filter, a 1x1 conv's input gradient); with ds_filter, "
               "grad_output (input 0) is the output gradient of the bias-only 1x1 "
               "conv reading the depthwise output, whose input gradient (the "
               "depthwise grad_output) is computed row by row too, and whose bias "
               "steps; bit-identical to the unfused TL_CONV_UPDATE / "
               "TL_DEPTHWISE_UPDATE ops."),
    TflmOpSpec("TL_SOFTMAX_XENT", "softmax_xent.cc", ("logits", "labels"),
               ("loss", "grad_logits"), {"label_smoothing": float},
               "Mean softmax cross-entropy of logits [N, K] against int32 labels [N] "
               "with label smoothing, and grad_logits = (softmax - targets) / N (all 0 "
               "if a logit or the loss is non-finite); a label outside [0, K) fails."),
    TflmOpSpec("TL_AVGPOOL_GRAD", "avgpool_grad.cc", ("grad_output", "[addend]"),
               ("grad_input",),
               {"filter_h": int, "filter_w": int, "padding": int, "stride_h": int,
                "stride_w": int},
               "Gradient of AVERAGE_POOL_2D (count excludes padding); grad_output [N, C] "
               "for global pooling. With addend (grad_input's shape, another gradient "
               "of the pool's input) the output is addend + that gradient, as an ADD "
               "would give it: a fan-out's sum without a third tensor."),
    TflmOpSpec("TL_RESIZE_BILINEAR_GRAD", "resize_bilinear_grad.cc", ("grad_output",),
               ("grad_input",), {"align_corners": bool, "half_pixel_centers": bool},
               "Adjoint of the float RESIZE_BILINEAR reference (same index and weight "
               "arithmetic)."),
    TflmOpSpec("TL_GROUPNORM", "group_norm.cc", ("x", "[gamma]", "[beta]"), ("y",),
               {"epsilon": float, "groups": int},
               "GroupNormalization forward (tf-keras), NHWC."),
    TflmOpSpec("TL_GROUPNORM_GRAD", "group_norm.cc",
               ("grad_output", "[mask]", "x", "[gamma]", "[beta]"), ("[grad_input]",),
               {"epsilon": float, "groups": int, "learning_rate": float},
               "GroupNormalization backward from the saved input: grad_input (gamma "
               "before its step), then in-place SGD of a variable gamma and of beta."),
    TflmOpSpec("TL_BATCHNORM_GRAD", "batch_norm_grad.cc",
               ("grad_output", "[mask]", "[x]", "[mean]", "[inv_std]", "[gamma]", "[beta]"),
               ("[grad_input]",), {"learning_rate": float},
               "Backward of a batch norm with frozen statistics (forward as MUL/ADD): "
               "grad_input = dy * gamma * inv_std, then in-place SGD of a variable "
               "gamma (needs x, f32 or int8, and mean) and of beta."),
    TflmOpSpec("TL_WEIGHT_STANDARDIZE", "weight_standardize.cc", ("w",), ("w_hat",),
               {"epsilon": float},
               "Weight standardisation of an OHWI filter per output channel over its "
               "fan-in (tflite_tl.layers.standardize_kernel): (w - mean) / sqrt(var + "
               "epsilon), population variance."),
    TflmOpSpec("TL_WEIGHT_STANDARDIZE_GRAD", "weight_standardize.cc", ("w", "grad_w_hat"),
               ("grad_w",), {"epsilon": float},
               "Vector-Jacobian product of TL_WEIGHT_STANDARDIZE: grad_w from the raw "
               "filter w and grad_w_hat (statistics recomputed from w)."),
]}


def custom_options(op_name: str, **options) -> bytes:
  """The custom_options bytes of one TL_* op in a .tflite model.

  Raises:
    ValueError: unknown op, or options missing, unknown or of the wrong type.
  """
  if op_name not in OPS:
    raise ValueError(f"unknown TFLM training op {op_name!r}; known: {sorted(OPS)}")
  spec = OPS[op_name]
  if set(options) != set(spec.options):
    raise ValueError(f"{op_name} takes options {sorted(spec.options)}, got {sorted(options)}")
  if not spec.options:
    return b""
  typed = {}
  for key, kind in spec.options.items():
    value = options[key]
    if kind is bool:
      if not isinstance(value, bool):
        raise ValueError(f"{op_name} option {key!r} must be a bool, got {value!r}")
      typed[key] = value
    elif kind is int:
      if isinstance(value, bool) or int(value) != value:
        raise ValueError(f"{op_name} option {key!r} must be an int, got {value!r}")
      typed[key] = int(value)
    else:
      typed[key] = float(value)
  for key in ("padding", "expand_padding"):
    if key in typed and typed[key] not in (0, 1):
      raise ValueError(f"{op_name} option {key!r} is 0 (VALID) or 1 (SAME), got "
                       f"{typed[key]}")
  if "label_smoothing" in typed and not 0.0 <= typed["label_smoothing"] < 1.0:
    raise ValueError(f"{op_name} option 'label_smoothing' must be in [0, 1), got "
                     f"{typed['label_smoothing']}")
  if typed.get("align_corners") and typed.get("half_pixel_centers"):
    raise ValueError(f"{op_name}: align_corners and half_pixel_centers cannot both be true")
  for key in ("filter_h", "filter_w", "groups"):
    if key in typed and typed[key] < 1:
      raise ValueError(f"{op_name} option {key!r} must be >= 1, got {typed[key]}")
  if "epsilon" in typed and typed["epsilon"] < 0:
    raise ValueError(f"{op_name} option 'epsilon' must be >= 0, got {typed['epsilon']}")
  for key in ("activation", "depthwise_activation", "expand_activation"):
    if key in typed and typed[key] not in (0, 1, 2):
      raise ValueError(f"{op_name} option {key!r} is 0 (none), 1 (ReLU) or 2 (ReLU6), "
                       f"got {typed[key]}")
  for key in ("depthwise_zero_point", "expand_zero_point"):
    if key in typed and not -128 <= typed[key] <= 127:
      raise ValueError(f"{op_name} option {key!r} must be an int8 zero point, got "
                       f"{typed[key]}")
  if "channel_axis" in typed and typed["channel_axis"] not in (0, 1):
    raise ValueError(f"{op_name} option 'channel_axis' is 0 (output channels) or 1 "
                     f"(input channels), got {typed['channel_axis']}")
  for key in ("stride_h", "stride_w", "expand_stride_h", "expand_stride_w"):
    if key in typed and typed[key] < 1:
      raise ValueError(f"{op_name} option {key!r} must be >= 1, got {typed[key]}")
  # Flexbuffer maps store keys sorted, which fixes the element indices that
  # the C++ side reads.
  return bytes(flexbuffers.Dumps(typed))


def firmware_sources() -> List[pathlib.Path]:
  """Every file a firmware project needs to compile the TL_* ops (with TFLM)."""
  files = sorted((KERNELS_DIR / "reference").glob("*.h"))
  files += sorted((KERNELS_DIR / "tflm").glob("*.h"))
  files += sorted((KERNELS_DIR / "tflm").glob("*.cc"))
  return files
