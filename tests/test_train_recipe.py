"""The few-shot fine-tuning recipe (the transfer benchmark's)."""
import pytest

from tflite_tl.train import recipe


def test_epochs_match_the_benchmark_at_both_ends():
  assert recipe.default_epochs(100) == recipe.MAX_EPOCHS == 30  # 10-shot
  assert recipe.default_epochs(8000) == recipe.MIN_EPOCHS == 3  # full split
  assert 3 < recipe.default_epochs(1000) < 30
  with pytest.raises(ValueError, match="num_samples"):
    recipe.default_epochs(0)


def test_learning_rate_per_method():
  assert recipe.finetune_recipe("ft_full", 100).learning_rate == 1e-3
  assert recipe.finetune_recipe("ft_last", 100).learning_rate == 1e-2
  r = recipe.finetune_recipe("tinytl_lb", 8000)
  assert (r.optimizer, r.learning_rate, r.batch_size, r.epochs) == (
      "adam", 3e-3, 8, 3)
  assert r.describe() == "3 epochs, adam lr 0.003, batch 8"
