"""Own models end to end: a tf-keras model file -> load -> method -> lowered
train step (builtins only) -> TFLM steps compared with TF, arena measured.

Default subset: the minis of tests/own_model_builders.py (keras.applications'
own block code), one method that sends gradients through every new layer,
one TFLM step. Slow: every method on every mini for 20 steps, and the full
keras.applications networks (at 32 px) with TinyTL-L+B for 20 steps.
"""
import numpy as np
import pytest

from own_model_builders import MINIS
from own_model_builders import calibrated
from tflite_tl.lower import lower_model
from tflite_tl.verify import train_step as verify_lib
from tflite_tl.models import read_model_file
from tflite_tl.rewrite import UnsupportedModelError
from tflite_tl.rewrite import apply_method
from tflite_tl.rewrite import list_methods


def _saved(tmp_path, name, suffix=".keras"):
  path = str(tmp_path / f"{name}{suffix}")
  calibrated(name).save(path)
  return path


def _lower_and_compare(path, method, steps, resolution=None, batch=2):
  loaded = read_model_file(path, resolution, unit_range_input=True)
  model = apply_method(loaded.model, method, num_classes=5)
  lowered = lower_model(model, batch_size=batch, learning_rate=0.01)
  batches = verify_lib.random_batches(0, steps, batch,
                                      lowered.module.image_shape, 5)
  result = verify_lib.compare(lowered, batches, perturbed_references=1)
  return lowered, result


@pytest.mark.parametrize("name,suffix,method,new_ops", [
    ("mobilenet_v3_mini", ".h5", "tinytl_b", {"HARD_SWISH", "MUL", "MEAN"}),
    ("efficientnet_mini", ".keras", "tinytl_b", {"LOGISTIC", "MUL", "MEAN"}),
    ("sequential_cnn", ".keras", "ft_full", {"MAX_POOL_2D", "SPACE_TO_DEPTH",
                                             "DEPTH_TO_SPACE"}),
])
def test_model_file_lowers_to_builtins_and_matches_tf_in_tflm(
    tmp_path, name, suffix, method, new_ops):
  lowered, result = _lower_and_compare(_saved(tmp_path, name, suffix), method,
                                       steps=1)
  ops = lowered.train_ops()
  assert new_ops <= set(ops), sorted(ops)
  assert result["parity"] == "exact", result
  assert result["arena"].total > 0
  assert result["arena"].source.startswith("measured")


def test_every_method_applies_to_each_mini_or_says_why():
  for name in MINIS:
    model = calibrated(name)
    x = np.random.RandomState(0).rand(2, *model.inputs[0].shape[1:]).astype(
        np.float32)
    num_classes = model.outputs[0].shape[-1]
    # TinyTrain selects on labelled samples; the others need no data.
    # The budget is generous: this checks the rewrite, not the fit.
    options = {"tinytrain": {"support": (x, np.arange(len(x)) % num_classes),
                             "memory_budget": 64 << 20}}
    for method in list_methods():
      try:
        rewritten = apply_method(model, method, **options.get(method, {}))
      except UnsupportedModelError as e:
        # Lite residual needs inverted-residual blocks.
        assert name == "sequential_cnn" and method in ("tinytl_l",
                                                       "tinytl_lb"), e
        assert "no DepthwiseConv2D" in str(e)
        continue
      assert rewritten.trainable_weights, (name, method)
      # With the head kept, every method computes the model's function.
      np.testing.assert_allclose(rewritten(x).numpy(), model(x).numpy(),
                                 rtol=1e-4, atol=1e-6, err_msg=name + method)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MINIS))
@pytest.mark.parametrize("method", ["ft_last", "tinytl_b", "tinytl_l",
                                    "tinytl_lb", "ft_norm_last", "ft_full"])
def test_every_method_on_every_mini_20_steps(tmp_path, name, method):
  if name == "sequential_cnn" and method in ("tinytl_l", "tinytl_lb"):
    pytest.skip("no inverted-residual blocks (tested above)")
  _, result = _lower_and_compare(_saved(tmp_path, name), method, steps=20)
  assert result["parity"] in ("exact", "within_rounding"), result


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mobilenet_v2_0.35",
                                  "mobilenet_v3_small_0.75",
                                  "mobilenet_v3_large_0.75",
                                  "efficientnet_b0"])
def test_keras_applications_tinytl_lb_20_steps(tmp_path, name):
  from benchmarks import own_model_files  # pylint: disable=import-outside-toplevel
  path = own_model_files.write_model(name, str(tmp_path))
  _, result = _lower_and_compare(path, "tinytl_lb", steps=20, resolution=32)
  assert result["parity"] in ("exact", "within_rounding"), result
