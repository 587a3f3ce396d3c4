"""Tests for tflite_tl.models.pretrained (storage, checksum, loading)."""
import json
import os

import numpy as np
import pytest

from tflite_tl.models import get_model, pretrained


def _record(**builder_kwargs):
  return {"model": "tiny", "builder_kwargs": builder_kwargs,
          "test_accuracy": 0.5}


def _trained_like_tiny(seed=3):
  model = get_model("tiny", resolution=16)
  rng = np.random.RandomState(seed)
  for weight in model.weights:  # Moving statistics included.
    weight.assign(rng.uniform(0.5, 1.5, weight.shape).astype(np.float32))
  return model


def test_round_trip_restores_every_weight(tmp_path):
  model = _trained_like_tiny()
  record = pretrained.write_pretrained(model, "mine", _record(resolution=16),
                                       str(tmp_path))
  assert record["weights_file"] == "mine.npz"
  assert record["weights_sha256"] == pretrained.sha256_of(
      str(tmp_path / "mine.npz"))
  assert pretrained.list_pretrained(str(tmp_path)) == ["mine"]
  loaded = pretrained.load_pretrained("mine", str(tmp_path))
  for a, b in zip(model.weights, loaded.weights):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  x = np.random.RandomState(0).rand(2, 16, 16, 1).astype(np.float32)
  np.testing.assert_array_equal(model(x).numpy(), loaded(x).numpy())
  assert pretrained.pretrained_info("mine", str(tmp_path))["model"] == "tiny"


def test_loads_at_another_resolution_with_the_same_weights(tmp_path):
  model = _trained_like_tiny()
  pretrained.write_pretrained(model, "mine", _record(resolution=16),
                              str(tmp_path))
  bigger = pretrained.load_pretrained("mine", str(tmp_path), resolution=32)
  assert bigger.input_shape[1:3] == (32, 32)
  for a, b in zip(model.get_weights(), bigger.get_weights()):
    np.testing.assert_array_equal(a, b)


def test_same_weights_give_identical_bytes(tmp_path):
  model = _trained_like_tiny()
  pretrained.save_weights(model, str(tmp_path / "a.npz"))
  pretrained.save_weights(model, str(tmp_path / "b.npz"))
  assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()


def test_modified_weights_fail_the_checksum(tmp_path):
  model = _trained_like_tiny()
  pretrained.write_pretrained(model, "mine", _record(resolution=16),
                              str(tmp_path))
  pretrained.save_weights(_trained_like_tiny(seed=4), str(tmp_path / "mine.npz"))
  with pytest.raises(pretrained.PretrainedChecksumError, match="sha256"):
    pretrained.load_pretrained("mine", str(tmp_path))
  # Explicitly skipping verification loads the replaced weights.
  pretrained.load_pretrained("mine", str(tmp_path), verify_checksum=False)


def test_weights_for_another_architecture_are_rejected(tmp_path):
  pretrained.save_weights(_trained_like_tiny(), str(tmp_path / "w.npz"))
  wider = get_model("tiny", resolution=16, width_multiplier=2.0)
  with pytest.raises(ValueError, match="shape"):
    pretrained.load_weights(wider, str(tmp_path / "w.npz"))
  other = get_model("mcunet", resolution=32, input_channels=1, num_classes=10)
  with pytest.raises(ValueError, match="missing"):
    pretrained.load_weights(other, str(tmp_path / "w.npz"))


def test_unknown_or_incomplete_backbone(tmp_path):
  with pytest.raises(ValueError, match="No pretrained backbone 'nope'"):
    pretrained.load_pretrained("nope", str(tmp_path))
  (tmp_path / "half.json").write_text(json.dumps(_record(resolution=16)))
  assert pretrained.list_pretrained(str(tmp_path)) == []
  with pytest.raises(ValueError, match="half.npz"):
    pretrained.load_pretrained("half", str(tmp_path))
  assert pretrained.list_pretrained(os.path.join(str(tmp_path), "x")) == []


def test_name_must_be_a_string(tmp_path):
  with pytest.raises(ValueError, match="non-empty string"):
    pretrained.pretrained_info(None, str(tmp_path))


def test_weights_path_loads_into_a_resized_copy(tmp_path):
  model = _trained_like_tiny()
  pretrained.write_pretrained(model, "mine", _record(resolution=16),
                              str(tmp_path))
  path = pretrained.weights_path("mine", str(tmp_path))
  assert path == str(tmp_path / "mine.npz")
  bigger = get_model("tiny", resolution=24)
  pretrained.load_weights(bigger, path)
  np.testing.assert_array_equal(bigger.get_layer("logits").kernel.numpy(),
                                model.get_layer("logits").kernel.numpy())
  with pytest.raises(ValueError, match="Available"):
    pretrained.weights_path("other", str(tmp_path))
