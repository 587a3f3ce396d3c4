"""MCUNet: the TinyNAS network found for 256 KB SRAM / 1 MB flash boards.

Lin et al., "MCUNet: Tiny Deep Learning on IoT Devices" (NeurIPS 2020). The
block list is the published ImageNet model ``mcunet-256kb-1mb`` (listed as
``mcunet-256kB`` in the mit-han-lab/mcunet model zoo: 67.3 M MACs, 0.73 M
parameters, 60.9 % ImageNet top-1 at 160 px), transcribed from its network
configuration ``mcunet/assets/configs/mcunet-256kb-1mb_imagenet.json``
(mit-han-lab/tinyml): a 3x3 stride-2 stem of 16 channels, 18 MBConv blocks
with searched kernel sizes and hidden widths, no final 1x1 conv ("feature mix
layer") and a linear classifier on 160 channels. At 160 px, 3 channels and
1000 classes the model has 729,392 trainable parameters (744,880 with the
BatchNorm moving statistics).

``width_multiplier`` scales every channel count (rounded to multiples of 8);
it is not part of the published model and exists so the same searched
topology can be shrunk for flash-bound on-device training.
"""
from typing import Tuple

from tflite_tl._compat import keras
from tflite_tl.models import blocks

# (out_channels, kernel_size, stride, hidden_channels) per MBConv block; the
# hidden width equals the input width for the first block (no expansion).
MCUNET_256KB_BLOCKS: Tuple[Tuple[int, int, int, int], ...] = (
    (8, 3, 1, 16),
    (16, 5, 2, 24), (16, 7, 1, 96), (16, 3, 1, 80), (16, 5, 1, 80),
    (24, 3, 2, 80), (24, 7, 1, 144), (24, 5, 1, 144),
    (40, 7, 2, 96), (40, 5, 1, 200),
    (48, 3, 1, 200), (48, 5, 1, 240), (48, 3, 1, 192),
    (96, 5, 2, 288), (96, 5, 1, 384), (96, 5, 1, 288), (96, 3, 1, 384),
    (160, 5, 1, 480),
)
STEM_CHANNELS = 16
PUBLISHED_RESOLUTION = 160


def mcunet(resolution: int = PUBLISHED_RESOLUTION, input_channels: int = 3,
           num_classes: int = 1000, width_multiplier: float = 1.0,
           dropout: float = 0.0) -> keras.Model:
  """Builds MCUNet (256 KB model) as a functional tf-keras model.

  Args:
    resolution: square input size in pixels (160 published; >= 32).
    input_channels: 3 for RGB, 1 for grayscale.
    num_classes: size of the logits layer.
    width_multiplier: scales all channel counts (1.0 is the published model).
    dropout: dropout rate before the classifier (0 removes the layer).

  Returns:
    A model mapping float32 NHWC images to logits.
  """
  blocks.check_input_spec("mcunet", resolution, input_channels, num_classes,
                          min_resolution=32)
  blocks.check_width_multiplier("mcunet", width_multiplier)

  def scale(channels):
    return blocks.make_divisible(channels * width_multiplier)

  inputs = blocks.model_input(resolution, input_channels)
  x = blocks.conv_bn_relu(inputs, scale(STEM_CHANNELS), 3, 2, name="stem")
  for index, (out_channels, kernel, stride, hidden) in enumerate(
      MCUNET_256KB_BLOCKS, 1):
    in_channels = x.shape[-1]
    # The first block does not expand; keep that when channels are scaled.
    scaled_hidden = in_channels if index == 1 else scale(hidden)
    x = blocks.inverted_residual(x, scale(out_channels), kernel, stride,
                                 scaled_hidden / in_channels,
                                 name=f"block{index}",
                                 expanded_channels=scaled_hidden)
  outputs = blocks.classifier_head(x, num_classes, dropout)
  return keras.Model(inputs, outputs, name="mcunet")
