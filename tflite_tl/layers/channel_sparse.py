"""Convolutions that train only some channels of their kernel (sparse update).

TinyTrain (Kwon et al., ICML 2024) and MIT's sparse update (Lin et al.,
NeurIPS 2022) train chosen channels of chosen layers. These layers hold the
layer's full original kernel frozen and a second, trainable weight with only
the chosen slices::

    kernel          full kernel, frozen (never in trainable_weights)
    kernel_trained  trainable, the chosen slices:
                      Conv2D, channel_axis="input":   [kh, kw, K, Cout]
                      Conv2D, channel_axis="output":  [kh, kw, Cin, K]
                      DepthwiseConv2D ("channels"):   [kh, kw, K, 1]
    bias            trainable or not (``trainable_weight_names``)

and convolve with the *effective* kernel: ``kernel`` with the slices at
``trained_channels`` (sorted) replaced by ``kernel_trained``. The effective
kernel is built exactly (a gather over the concatenation of the trained and
the frozen slices, no arithmetic), so a fresh layer whose ``kernel_trained``
holds the original slices computes the original function bit for bit.

Which axis saves memory. The kernel gradient of chosen *input* channels
reads only those channels of the layer's input (``[N,H,W,K]`` instead of
``[N,H,W,Cin]``), so the training step stores only them; chosen *output*
channels need the whole input (they cut compute and trained parameters, not
stored activations). ``channel_axis="input"`` is therefore the default; see
docs/tinytrain.md for the measured bytes. A depthwise conv maps channel c to
channel c, so its one axis ("channels") saves memory like an input axis.

``model.trainable_weights`` is exactly what trains on the host and on the
device; the configuration round-trips through ``get_config``/``from_config``.
"""
from typing import Iterable, List, Optional, Sequence

import numpy as np

from tflite_tl._compat import keras
from tflite_tl._compat import tf
from tflite_tl.layers.partial import PartiallyTrainableMixin

_PACKAGE = "tflite_tl"
INPUT, OUTPUT, CHANNELS = "input", "output", "channels"
FULL_KERNEL = "kernel"
TRAINED_KERNEL = "kernel_trained"
#: The kernel axis ``trained_channels`` index, per ``channel_axis``.
KERNEL_AXIS = {INPUT: 2, OUTPUT: 3, CHANNELS: 2}


def check_channels(trained_channels: Iterable[int], size: int,
                   where: str) -> List[int]:
  """``trained_channels`` as a sorted list of distinct ints in [0, size).

  Raises:
    ValueError: empty, duplicated or out-of-range channels (names ``where``).
  """
  channels = [int(c) for c in trained_channels]
  if not channels:
    raise ValueError(f"{where}: trained_channels is empty; train at least one "
                     "channel or leave the layer frozen.")
  if len(set(channels)) != len(channels):
    raise ValueError(f"{where}: trained_channels {channels} has duplicates.")
  bad = [c for c in channels if not 0 <= c < size]
  if bad:
    raise ValueError(f"{where}: trained_channels {bad} are outside the "
                     f"layer's {size} channels (0..{size - 1}).")
  return sorted(channels)


def splice_channels(kernel, trained, channels: Sequence[int], axis: int,
                    trained_first: bool = True):
  """``kernel`` with the slices ``channels`` of ``axis`` replaced by ``trained``.

  Exact: the result gathers from the concatenation of ``trained`` and the
  frozen slices (``trained_first`` says which comes first; the result is the
  same, the ops differ), so every entry is a copy of an input entry.
  """
  size = int(kernel.shape[axis])
  channels = list(channels)
  chosen = set(channels)
  rest = [c for c in range(size) if c not in chosen]
  if not rest:
    return trained
  order = channels + rest if trained_first else rest + channels
  position = np.empty(size, np.int32)
  position[order] = np.arange(size, dtype=np.int32)
  frozen = tf.gather(kernel, np.asarray(rest, np.int32), axis=axis)
  parts = [trained, frozen] if trained_first else [frozen, trained]
  return tf.gather(tf.concat(parts, axis=axis), position, axis=axis)


class ChannelSparseMixin(PartiallyTrainableMixin):
  """Shared state and config of the channel-sparse convolutions.

  Subclasses set ``_AXES``: the accepted ``channel_axis`` values, the
  default first.
  """

  _AXES = (INPUT, OUTPUT)

  def __init__(self, *args, trained_channels: Sequence[int],
               channel_axis: Optional[str] = None, **kwargs):
    super().__init__(*args, **kwargs)
    channel_axis = channel_axis or self._AXES[0]
    if channel_axis not in self._AXES:
      raise ValueError(
          f"{type(self).__name__} '{self.name}': channel_axis must be one of "
          f"{self._AXES}, got {channel_axis!r}.")
    if getattr(self, "data_format", "channels_last") != "channels_last":
      raise ValueError(f"{type(self).__name__} '{self.name}': only "
                       "data_format='channels_last' is supported.")
    self.channel_axis = channel_axis
    self.trained_channels = sorted(int(c) for c in trained_channels)
    if not self.trained_channels:
      raise ValueError(f"{type(self).__name__} '{self.name}': trained_channels "
                       "is empty; train at least one channel.")

  def add_weight(self, name=None, *args, trainable=None, **kwargs):
    if name == "depthwise_kernel":
      name = FULL_KERNEL  # One name for the frozen kernel of every class.
    if name == FULL_KERNEL:
      trainable = False
    return super().add_weight(name, *args, trainable=trainable, **kwargs)

  def _kernel_axis(self) -> int:
    return KERNEL_AXIS[self.channel_axis]

  def _build_trained_kernel(self, kernel):
    axis = self._kernel_axis()
    shape = list(kernel.shape)
    self.trained_channels = check_channels(
        self.trained_channels, shape[axis],
        f"{type(self).__name__} '{self.name}'")
    shape[axis] = len(self.trained_channels)
    self.kernel_trained = self.add_weight(
        name=TRAINED_KERNEL, shape=tuple(shape), initializer="zeros",
        dtype=kernel.dtype)

  @property
  def num_trained_channels(self) -> int:
    return len(self.trained_channels)

  @property
  def stored_input_channels(self) -> int:
    """Channels of the input the kernel gradient reads (what is stored)."""
    if self.channel_axis == OUTPUT:
      return int(self.kernel.shape[2])
    return self.num_trained_channels

  def effective_kernel(self):
    """The kernel the layer convolves with (trained slices spliced in)."""
    return splice_channels(self.kernel, self.kernel_trained,
                           self.trained_channels, self._kernel_axis())

  def get_config(self):
    config = super().get_config()
    config["trained_channels"] = list(self.trained_channels)
    config["channel_axis"] = self.channel_axis
    return config


@keras.utils.register_keras_serializable(package=_PACKAGE)
class ChannelSparseConv2D(ChannelSparseMixin, keras.layers.Conv2D):
  """``Conv2D`` training only the kernel slices of ``trained_channels``.

  Args:
    trained_channels: indices of the trained channels on ``channel_axis``.
    channel_axis: ``"input"`` (default; stores only those input channels for
      the backward pass) or ``"output"``.
    trainable_weight_names: as :mod:`tflite_tl.layers.partial`, over
      ``kernel_trained`` and ``bias`` (``kernel`` is always frozen).
    Everything else as ``keras.layers.Conv2D`` (``groups`` must be 1).
  """

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **kwargs)
    if self.groups != 1:
      raise ValueError(f"ChannelSparseConv2D '{self.name}': grouped "
                       f"convolutions (groups={self.groups}) are not "
                       "supported; train the whole layer instead.")

  def build(self, input_shape):
    super().build(input_shape)
    self._build_trained_kernel(self.kernel)

  def convolution_op(self, inputs, kernel):
    del kernel  # Conv.call passes self.kernel; convolve with the spliced one.
    return super().convolution_op(inputs, self.effective_kernel())


@keras.utils.register_keras_serializable(package=_PACKAGE)
class ChannelSparseDepthwiseConv2D(ChannelSparseMixin,
                                   keras.layers.DepthwiseConv2D):
  """``DepthwiseConv2D`` training only the channels ``trained_channels``.

  Its full kernel is the weight ``kernel`` (stock Keras calls it
  ``depthwise_kernel``); ``channel_axis`` is always ``"channels"``;
  ``depth_multiplier`` must be 1.
  """

  _AXES = (CHANNELS,)

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **kwargs)
    if self.depth_multiplier != 1:
      raise ValueError(f"ChannelSparseDepthwiseConv2D '{self.name}': "
                       f"depth_multiplier {self.depth_multiplier} is not "
                       "supported (only 1).")

  @property
  def kernel(self):
    return self.depthwise_kernel

  def build(self, input_shape):
    super().build(input_shape)
    self._build_trained_kernel(self.depthwise_kernel)

  def call(self, inputs):
    outputs = keras.backend.depthwise_conv2d(
        inputs, self.effective_kernel(), strides=self.strides,
        padding=self.padding, dilation_rate=self.dilation_rate,
        data_format=self.data_format)
    if self.use_bias:
      outputs = keras.backend.bias_add(outputs, self.bias,
                                       data_format=self.data_format)
    if self.activation is not None:
      return self.activation(outputs)
    return outputs


CHANNEL_SPARSE_LAYERS = {
    keras.layers.Conv2D: ChannelSparseConv2D,
    keras.layers.DepthwiseConv2D: ChannelSparseDepthwiseConv2D,
}


def channel_sparse_class_for(layer) -> Optional[type]:
  """The channel-sparse class for ``layer`` (a Conv2D or DepthwiseConv2D,
  stock or per-weight trainable), or None."""
  if isinstance(layer, ChannelSparseMixin):
    return type(layer)
  if isinstance(layer, keras.layers.DepthwiseConv2D):
    return ChannelSparseDepthwiseConv2D
  if isinstance(layer, keras.layers.Conv2D) and layer.groups == 1:
    return ChannelSparseConv2D
  return None


def trained_slices(kernel: np.ndarray, channels: Sequence[int],
                   axis: int) -> np.ndarray:
  """The initial ``kernel_trained``: the chosen slices of ``kernel``."""
  return np.take(np.asarray(kernel), list(channels), axis=axis)
