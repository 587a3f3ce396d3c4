"""Model rewrites for on-device transfer learning (TinyTL).

Every pass returns a new functional model and leaves its input untouched.
"""
from tflite_tl.rewrite.blocks import MBConvBlock
from tflite_tl.rewrite.blocks import find_mbconv_blocks
from tflite_tl.rewrite.canonical import canonicalize
from tflite_tl.rewrite.fold_bn import fold_batch_norm
from tflite_tl.rewrite.graph import UnsupportedModelError
from tflite_tl.rewrite.head import find_classifier
from tflite_tl.rewrite.head import replace_classifier
from tflite_tl.rewrite.lite_residual import insert_lite_residual
from tflite_tl.rewrite.lite_residual import lite_residual_layers
from tflite_tl.rewrite.methods import apply_method
from tflite_tl.rewrite.methods import list_methods
from tflite_tl.rewrite.methods import method_needs_support
from tflite_tl.rewrite.methods import register_method
from tflite_tl.rewrite.channel_sparse import apply_selection
from tflite_tl.rewrite.channel_sparse import selection_of
from tflite_tl.rewrite.sparse_methods import prepare as prepare_sparse_update
from tflite_tl.rewrite.trainability import freeze
from tflite_tl.rewrite.trainability import make_biases_trainable
from tflite_tl.rewrite.trainability import make_layers_trainable
from tflite_tl.rewrite.trainability import set_trainable
