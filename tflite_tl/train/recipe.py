"""The host fine-tuning recipe that works on few-shot data.

It is the recipe of the transfer benchmark (``benchmarks/transfer_lib``,
docs/transfer.md), whose tables in BENCHMARKS.md it reproduces: Adam at
3e-3 (1e-3 for whole-network fine-tuning, which diverges at a head's step
size; 1e-2 for a lone classifier), batch 8, no augmentation, the new head
as ``rewrite.apply_method`` initialises it, and about as many steps as the
benchmark takes: 30 epochs on 10 images per class, 3 on a full training
split. In between, the epochs give about ``STEP_BUDGET`` steps, within
[``MIN_EPOCHS``, ``MAX_EPOCHS``].
"""
import dataclasses
import math

OPTIMIZER = "adam"
BATCH_SIZE = 8
LEARNING_RATE = 3e-3
METHOD_LEARNING_RATES = {"ft_full": 1e-3, "ft_last": 1e-2}
MIN_EPOCHS, MAX_EPOCHS = 3, 30
# 3 epochs of the 8,000-image Animal-MNIST training split at batch 8.
STEP_BUDGET = 3000


@dataclasses.dataclass(frozen=True)
class Recipe:
  optimizer: str
  learning_rate: float
  batch_size: int
  epochs: int

  def describe(self) -> str:
    return (f"{self.epochs} epochs, {self.optimizer} lr {self.learning_rate:g}"
            f", batch {self.batch_size}")


def default_epochs(num_samples: int, batch_size: int = BATCH_SIZE) -> int:
  """Epochs for about STEP_BUDGET steps, clamped to [MIN, MAX]_EPOCHS."""
  if num_samples < 1:
    raise ValueError(f"num_samples must be >= 1, got {num_samples}.")
  steps_per_epoch = math.ceil(num_samples / batch_size)
  return int(min(MAX_EPOCHS, max(MIN_EPOCHS,
                                 round(STEP_BUDGET / steps_per_epoch))))


def finetune_recipe(method: str, num_samples: int) -> Recipe:
  """The recipe for ``method`` on a training set of ``num_samples``."""
  return Recipe(optimizer=OPTIMIZER,
                learning_rate=METHOD_LEARNING_RATES.get(method,
                                                        LEARNING_RATE),
                batch_size=BATCH_SIZE,
                epochs=default_epochs(num_samples, BATCH_SIZE))
