"""The backbone an export starts from: a shipped pretrained one (rebuilt at
another resolution if asked) or a zoo model with random weights."""
import logging
from typing import Optional, Tuple

from tflite_tl import models as models_lib
from tflite_tl.models import pretrained as pretrained_lib

log = logging.getLogger(__name__)


def load_backbone(name: str, pretrained: bool, resolution: Optional[int]):
  """(model, pretrained record or None) of backbone ``name`` (a zoo or
  shipped name, or a tf-keras model file)."""
  if models_lib.is_model_path(name):
    # The export's images are in [0, 1], the train step's input contract.
    loaded = models_lib.read_model_file(name, resolution,
                                        unit_range_input=True)
    for note in loaded.notes:
      log.warning("%s", note)
    return loaded.model, None
  if pretrained:
    record = models_lib.pretrained_info(name)
    kwargs = dict(record.get("builder_kwargs", {}))
    if resolution is None or resolution == kwargs.get("resolution"):
      return models_lib.load_pretrained(name), record
    # Convolution weights do not depend on the resolution (global pooling
    # before the head), so the shipped weights load into a resized network.
    kwargs["resolution"] = resolution
    model = models_lib.get_model(record["model"], **kwargs)
    pretrained_lib.load_weights(model, models_lib.weights_path(name))
    return model, record
  # Zoo models default to ImageNet-like inputs; the shipped backbones are
  # 32 px grayscale, so are the random-weight fallbacks.
  kwargs = {"resolution": resolution or 32, "input_channels": 1}
  log.warning("Model '%s' has no shipped pretrained weights: exporting it with "
              "random weights.", name)
  return models_lib.get_model(name, **kwargs), None


def image_shape(model) -> Tuple[int, int, int]:
  """(height, width, channels) of the model's input."""
  shape = [int(d) for d in model.inputs[0].shape[1:]]
  return shape[0], shape[1], shape[2]
