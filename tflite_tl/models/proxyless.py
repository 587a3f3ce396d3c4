"""ProxylessNAS-Mobile, the backbone TinyTL evaluates.

Architecture of Cai, Zhu & Han, "ProxylessNAS: Direct Neural Architecture
Search on Target Task and Hardware" (ICLR 2019), the mobile-latency
specialised network ("proxyless_mobile"), which TinyTL (Cai et al., NeurIPS
2020) fine-tunes in its Table 2. The block list below is the published network
configuration (``proxyless_mobile.config`` of mit-han-lab/proxylessnas, also
transcribed in osmr/imgclsmob ``pytorchcv/models/proxylessnas.py``): a 3x3
stride-2 stem of 32 channels, 20 MBConv blocks with kernel 3/5/7 and expand
ratio 1/3/6 (the searched "zero" blocks of the 32-channel stage are omitted,
they are identities), a 1x1 conv to 1280 channels and a linear classifier.

At 224 px, 3 input channels and 1000 classes the model has 4,080,512
trainable parameters, the figure the reference implementations report for
proxyless_mobile (BatchNorm gamma/beta included, moving statistics not); Keras
also counts the BatchNorm moving mean/variance, 4,115,008 parameters in all.
"""
from typing import Sequence, Tuple

from tflite_tl._compat import keras
from tflite_tl.models import blocks

# (out_channels, kernel_size, stride, expand_ratio) per MBConv block.
PROXYLESS_MOBILE_BLOCKS: Tuple[blocks.MBConvSpec, ...] = (
    (16, 3, 1, 1),
    (32, 5, 2, 3), (32, 3, 1, 3),
    (40, 7, 2, 3), (40, 3, 1, 3), (40, 5, 1, 3), (40, 5, 1, 3),
    (80, 7, 2, 6), (80, 5, 1, 3), (80, 5, 1, 3), (80, 5, 1, 3),
    (96, 5, 1, 6), (96, 5, 1, 3), (96, 5, 1, 3), (96, 5, 1, 3),
    (192, 7, 2, 6), (192, 7, 1, 6), (192, 7, 1, 3), (192, 7, 1, 3),
    (320, 7, 1, 6),
)
STEM_CHANNELS = 32
LAST_CHANNELS = 1280


def mbconv_stack(x, specs: Sequence[blocks.MBConvSpec], prefix: str = "block"):
  """Applies MBConv blocks ``<prefix>1``, ``<prefix>2``... in order."""
  for index, (out_channels, kernel, stride, expand) in enumerate(specs, 1):
    x = blocks.inverted_residual(x, out_channels, kernel, stride, expand,
                                 name=f"{prefix}{index}")
  return x


def proxyless_mobile(resolution: int = 224, input_channels: int = 3,
                     num_classes: int = 1000,
                     dropout: float = 0.1) -> keras.Model:
  """Builds ProxylessNAS-Mobile as a functional tf-keras model.

  Args:
    resolution: square input size in pixels (224 in the papers; any size >=
      32 works, the network downsamples by 32).
    input_channels: 3 for RGB, 1 for grayscale.
    num_classes: size of the logits layer.
    dropout: dropout rate before the classifier (0 removes the layer).

  Returns:
    A model mapping float32 NHWC images to logits.
  """
  blocks.check_input_spec("proxyless_mobile", resolution, input_channels,
                          num_classes, min_resolution=32)
  inputs = blocks.model_input(resolution, input_channels)
  x = blocks.conv_bn_relu(inputs, STEM_CHANNELS, 3, 2, name="stem")
  x = mbconv_stack(x, PROXYLESS_MOBILE_BLOCKS)
  x = blocks.conv_bn_relu(x, LAST_CHANNELS, 1, 1, name="head_conv")
  outputs = blocks.classifier_head(x, num_classes, dropout)
  return keras.Model(inputs, outputs, name="proxyless_mobile")
