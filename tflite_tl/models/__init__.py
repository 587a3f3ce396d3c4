"""Model zoo: functional tf-keras CNNs for on-device transfer learning.

``get_model(name, **kwargs)`` builds any registered network;
``load_pretrained(name)`` returns a shipped Fashion-MNIST backbone;
``load_model_file(path, resolution=None)`` a user's own tf-keras model file.
"""
from tflite_tl.models.calibrate import calibrate_batch_norm
from tflite_tl.models.mcunet_tinynas import mcunet
from tflite_tl.models.mobilenetv2 import mobilenet_v2
from tflite_tl.models.model_file import ModelFile
from tflite_tl.models.model_file import ModelFileError
from tflite_tl.models.model_file import is_model_path
from tflite_tl.models.model_file import load_model_file
from tflite_tl.models.model_file import read_model_file
from tflite_tl.models.proxyless import proxyless_mobile
from tflite_tl.models.registry import builder_arguments
from tflite_tl.models.registry import get_builder
from tflite_tl.models.registry import get_model
from tflite_tl.models.registry import list_models
from tflite_tl.models.registry import register_model
from tflite_tl.models.tinynet import tiny
from tflite_tl.models.pretrained import PretrainedChecksumError
from tflite_tl.models.pretrained import list_pretrained
from tflite_tl.models.pretrained import load_pretrained
from tflite_tl.models.pretrained import pretrained_info
from tflite_tl.models.pretrained import weights_path
