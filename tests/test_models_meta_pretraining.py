"""Meta-training a shipped backbone (small run on real Fashion-MNIST)."""
import numpy as np

from tflite_tl.models import meta_pretraining
from tflite_tl.models import pretrained


def test_meta_pretrain_records_and_round_trips(tmp_path):
  recipe = meta_pretraining.MetaRecipe(episodes=4, eval_episodes=2)
  model, record = meta_pretraining.meta_pretrain(
      "tiny", recipe=recipe, max_train_samples=400, name="tiny_test")
  base = pretrained.load_pretrained("tiny")
  changed = [not np.array_equal(a.numpy(), b.numpy())
             for a, b in zip(model.weights, base.weights)]
  assert any(changed)
  assert record["init_from"]["name"] == "tiny"
  assert record["meta_training"]["embedding"] == "global_pool"
  assert len(record["episode_accuracy"]["before"]) == 2
  assert "--meta_train --init_from=tiny" in record["command"]
  written = pretrained.write_pretrained(model, "tiny_test", record,
                                        str(tmp_path))
  loaded = pretrained.load_pretrained("tiny_test", str(tmp_path))
  for a, b in zip(loaded.weights, model.weights):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  assert written["weights_sha256"]
