"""Keras layers used by tflite-tl rewrites."""
from tflite_tl.layers.channel_sparse import ChannelSparseConv2D
from tflite_tl.layers.channel_sparse import ChannelSparseDepthwiseConv2D
from tflite_tl.layers.channel_sparse import ChannelSparseMixin
from tflite_tl.layers.channel_sparse import channel_sparse_class_for
from tflite_tl.layers.partial import BatchNormalization
from tflite_tl.layers.partial import Conv2D
from tflite_tl.layers.partial import Dense
from tflite_tl.layers.partial import DepthwiseConv2D
from tflite_tl.layers.partial import PartiallyTrainableMixin
from tflite_tl.layers.partial import partial_class_for
from tflite_tl.layers.ws_conv import WSConv2D
from tflite_tl.layers.ws_conv import standardize_kernel
from tflite_tl.layers.activations import HardSigmoid
from tflite_tl.layers.activations import HardSwish
