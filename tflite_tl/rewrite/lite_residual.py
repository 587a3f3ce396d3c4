"""TinyTL lite residual branches (Cai et al., NeurIPS 2020, Sec. 3.2).

For each inverted-residual block with input ``x`` (H x W x Cin) and output
``y`` (H' x W' x Cout) a branch is added::

    y_new = y + Up(Norm2(Conv1x1(ReLU(Norm1(GConv_kxk(AvgPool2(x)))))))

* ``AvgPool2``: 2x2 average pooling, stride 2 (global average pooling when
  the pooled map would be 1x1).
* ``GConv_kxk``: k x k conv with 2 groups, stride = the block's stride,
  ``same`` padding, no bias, width = Cin rounded to a multiple of 8. k is 5,
  reduced by 2 until it fits the pooled resolution (5 -> 3 -> 1), and 1 after
  global pooling.
* ``Norm``: GroupNorm (8 channels per group) after weight-standardised convs
  (:class:`tflite_tl.layers.WSConv2D`), as TinyTL uses for tiny batches; or
  BatchNorm (frozen statistics, :class:`tflite_tl.layers.BatchNormalization`)
  after plain convs. ``Norm2``'s scale starts at zero, so a fresh branch is a
  no-op and the model's outputs are unchanged.
* ``Up``: bilinear upsampling to H' x W' (``UpSampling2D`` for integer
  factors, ``Resizing`` otherwise).

Following TinyTL's placement, branches go to blocks with an expansion conv
(ProxylessNAS's first MBConv1 block gets none); ``skip_unexpanded=False``
adds them to every block.
"""
from typing import Dict, Optional

from tflite_tl._compat import keras
from tflite_tl.layers import partial
from tflite_tl.layers.ws_conv import WSConv2D
from tflite_tl.models.blocks import make_divisible
from tflite_tl.rewrite import blocks as blocks_lib
from tflite_tl.rewrite import graph

NORMS = ("group", "batch")
LITE_SUFFIX = "_lite"


def branch_kernel_size(pooled_resolution: int, max_kernel_size: int = 5) -> int:
  """TinyTL's rule: the largest odd kernel <= max that fits the pooled map."""
  if pooled_resolution <= 1:
    return 1
  kernel = max_kernel_size
  while kernel > 1 and pooled_resolution < kernel:
    kernel -= 2
  return kernel


def _group_norm_groups(channels: int, per_group: int = 8) -> int:
  """Number of GroupNorm groups giving ~``per_group`` channels each."""
  groups = max(1, channels // per_group)
  while channels % groups:
    groups -= 1
  return groups


def _conv_groups(in_channels: int, out_channels: int, wanted: int = 2) -> int:
  return wanted if in_channels % wanted == 0 and out_channels % wanted == 0 else 1


class _BranchBuilder:
  """Builds the layers of one branch; names derive from the depthwise conv."""

  def __init__(self, block, norm, max_kernel_size, expand, seed):
    self.block = block
    self.norm = norm
    self.max_kernel_size = max_kernel_size
    self.expand = expand
    self.seed = seed
    self.base = block.depthwise.name + LITE_SUFFIX

  def _conv(self, filters, kernel, strides, groups, name, seed):
    kwargs = dict(filters=filters, kernel_size=kernel, strides=strides,
                  padding="same", groups=groups, use_bias=False,
                  kernel_initializer=keras.initializers.HeNormal(seed=seed),
                  name=name)
    if self.norm == "group":
      return WSConv2D(**kwargs)
    return partial.Conv2D(**kwargs)

  def _norm(self, channels, name, zero_gamma):
    gamma = "zeros" if zero_gamma else "ones"
    if self.norm == "group":
      return keras.layers.GroupNormalization(
          groups=_group_norm_groups(channels), epsilon=1e-5,
          gamma_initializer=gamma, name=name)
    return partial.BatchNormalization(epsilon=1e-5, gamma_initializer=gamma,
                                      name=name)

  def __call__(self, x, y):
    height, width, in_channels = self.block.input_shape
    out_height, out_width, out_channels = self.block.output_shape
    pooled = min(height, width) // 2
    if pooled <= 1:
      h = keras.layers.GlobalAveragePooling2D(
          keepdims=True, name=f"{self.base}_pool")(x)
      kernel, strides = 1, 1
    else:
      h = keras.layers.AveragePooling2D(2, name=f"{self.base}_pool")(x)
      kernel = branch_kernel_size(pooled, self.max_kernel_size)
      strides = self.block.stride
    mid = make_divisible(in_channels * self.expand)
    h = self._conv(mid, kernel, strides, _conv_groups(in_channels, mid),
                   f"{self.base}_conv1", self.seed)(h)
    h = self._norm(mid, f"{self.base}_norm1", zero_gamma=False)(h)
    h = keras.layers.ReLU(name=f"{self.base}_relu")(h)
    h = self._conv(out_channels, 1, 1, 1, f"{self.base}_conv2",
                   self.seed + 1)(h)
    h = self._norm(out_channels, f"{self.base}_norm2", zero_gamma=True)(h)
    branch_height, branch_width = h.shape[1], h.shape[2]
    if (branch_height, branch_width) != (out_height, out_width):
      if out_height % branch_height == 0 and out_width % branch_width == 0:
        h = keras.layers.UpSampling2D(
            (out_height // branch_height, out_width // branch_width),
            interpolation="bilinear", name=f"{self.base}_upsample")(h)
      else:
        h = keras.layers.Resizing(out_height, out_width,
                                  interpolation="bilinear",
                                  name=f"{self.base}_upsample")(h)
    return keras.layers.Add(name=f"{self.base}_add")([y, h])


def has_lite_residual(model: keras.Model) -> bool:
  """True if ``model`` already contains branches made by this module."""
  return any(l.name.endswith(LITE_SUFFIX + "_add") for l in model.layers)


def insert_lite_residual(model: keras.Model, norm: str = "group",
                         max_kernel_size: int = 5, expand: float = 1.0,
                         skip_unexpanded: bool = True,
                         seed: int = 0) -> keras.Model:
  """Returns a copy of ``model`` with a lite residual branch on each block.

  Args:
    model: a flat functional model made of inverted-residual blocks (see
      :mod:`tflite_tl.rewrite.blocks`); not modified.
    norm: ``"group"`` (GroupNorm + weight-standardised convs, TinyTL's
      choice for batches of 1-8) or ``"batch"`` (BatchNorm, frozen stats).
    max_kernel_size: kernel of the branch's group conv at high resolution.
    expand: branch width = ``in_channels * expand`` rounded to a multiple of 8.
    skip_unexpanded: skip blocks without a 1x1 expansion conv, as TinyTL does.
    seed: seeds the branch conv initialisers (deterministic models).

  Returns:
    The new model. Branch layers are trainable; every other layer keeps its
    trainability. Outputs equal the original model's (the last norm's scale
    is zero).

  Raises:
    UnsupportedModelError: a DepthwiseConv2D outside a supported block (named
      in the message), no blocks, or the model already has branches.
  """
  if norm not in NORMS:
    raise ValueError(
        f"insert_lite_residual: norm must be one of {NORMS}, got {norm!r}.")
  if max_kernel_size < 1 or max_kernel_size % 2 == 0:
    raise ValueError(
        "insert_lite_residual: max_kernel_size must be a positive odd "
        f"integer, got {max_kernel_size!r}.")
  if has_lite_residual(model):
    raise graph.UnsupportedModelError(
        f"model '{model.name}' already has lite residual branches; insert "
        "them once, into the model without branches.")
  found = blocks_lib.find_mbconv_blocks(model)
  chosen = [b for b in found if b.expand is not None or not skip_unexpanded]
  if not chosen:
    raise graph.UnsupportedModelError(
        f"model '{model.name}': none of its {len(found)} inverted-residual "
        "blocks has an expansion conv; pass skip_unexpanded=False to add "
        "branches to blocks without one.")
  by_output: Dict[int, _BranchBuilder] = {
      id(b.output): _BranchBuilder(b, norm, max_kernel_size, expand,
                                   seed + 2 * i)
      for i, b in enumerate(chosen)}

  def node_hook(node, ctx) -> Optional[object]:
    outputs = node.outputs
    if not isinstance(outputs, (list, tuple)):
      outputs = [outputs]
    builder = next((by_output[id(t)] for t in outputs if id(t) in by_output),
                   None)
    if builder is None:
      return None
    y = ctx.call_copy(node)
    return builder(ctx.new_tensor(builder.block.input), y)

  return graph.rebuild(model, node_hook=node_hook)


def lite_residual_layers(model: keras.Model):
  """The layers of ``model`` that belong to lite residual branches."""
  return [l for l in model.layers if LITE_SUFFIX + "_" in l.name
          and l.name.split(LITE_SUFFIX + "_")[-1] in (
              "pool", "conv1", "norm1", "relu", "conv2", "norm2", "upsample",
              "add")]
