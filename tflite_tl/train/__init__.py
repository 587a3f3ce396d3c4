"""Host training of exactly a model's trainable weights.

``fit`` trains ``model.trainable_weights`` (per-weight trainability comes from
``tflite_tl.layers``) with SGD or Adam, label smoothing, seeds, progress bars
and atomic per-epoch checkpoints; ``evaluate`` and ``predict_logits`` run the
model in inference mode; ``recalibrate_batchnorm`` re-estimates BatchNorm
statistics after training with batch statistics.
"""
from tflite_tl.train import augment
from tflite_tl.train.batchnorm import recalibrate_batchnorm
from tflite_tl.train.episodic import (embedding_model, meta_train,
                                      prototype_accuracy, prototype_logits)
from tflite_tl.train.evaluation import evaluate, predict_logits
from tflite_tl.train.history import History
from tflite_tl.train.losses import smoothed_targets, softmax_cross_entropy
from tflite_tl.train.loop import fit, seed_everything
from tflite_tl.train.optimizers import make_optimizer
from tflite_tl.train.recipe import Recipe, finetune_recipe

__all__ = [
    "History", "Recipe", "augment", "embedding_model", "evaluate",
    "finetune_recipe", "fit", "make_optimizer", "meta_train", "predict_logits",
    "prototype_accuracy", "prototype_logits",
    "recalibrate_batchnorm", "seed_everything", "smoothed_targets", "softmax_cross_entropy",
]
