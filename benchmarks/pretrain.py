"""Pretrains a zoo model on a dataset and writes a shipped backbone.

  python -m benchmarks.pretrain --model=mcunet

uses the preset of the shipped backbone of that name (see
``tflite_tl.models.pretraining.PRESETS``); any flag given overrides it. The
weights and the JSON record land in ``--out_dir``
(``tflite_tl/models/pretrained`` by default), where
``tflite_tl.models.load_pretrained(NAME)`` finds them.

  python -m benchmarks.pretrain --meta_train --init_from=tiny --name=tiny_meta

meta-trains the shipped backbone ``--init_from`` on N-way K-shot episodes of
``--dataset`` (ProtoNet, TinyTrain's offline stage; host training) and ships
it as ``--name``; the record holds the episode accuracy before and after.
"""
from absl import app, flags, logging

from tflite_tl.models import meta_pretraining, pretrained, pretraining

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "Zoo model (tflite_tl.models.list_models()).")
flags.DEFINE_string("name", None, "Backbone name for the files (default: model).")
flags.DEFINE_string("dataset", "fashion_mnist", "tflite_tl.data dataset.")
flags.DEFINE_integer("resolution", None, "Input side in pixels.")
flags.DEFINE_integer("channels", None, "Input channels (1 gray, 3 RGB).")
flags.DEFINE_float("width_multiplier", None, "Builder width multiplier.")
flags.DEFINE_integer("last_channels", None, "mobilenet_v2 last conv width.")
flags.DEFINE_integer("epochs", None, "Training epochs.")
flags.DEFINE_integer("batch_size", None, "Batch size.")
flags.DEFINE_float("learning_rate", None, "Peak Adam learning rate.")
flags.DEFINE_float("label_smoothing", None, "Label smoothing epsilon.")
flags.DEFINE_integer("max_shift", None, "Random shift augmentation, pixels.")
flags.DEFINE_boolean("flip", None, "Random horizontal flips.")
flags.DEFINE_integer("seed", None, "Random seed.")
flags.DEFINE_integer("max_train_samples", None, "Use only N training samples.")
flags.DEFINE_boolean("progress", True, "Progress bars (on a terminal).")
flags.DEFINE_string("out_dir", pretrained.PRETRAINED_DIR, "Output directory.")
flags.DEFINE_boolean("meta_train", False, "Meta-train the shipped backbone "
                     "--init_from on episodes (ProtoNet) instead of "
                     "pretraining --model.")
flags.DEFINE_string("init_from", None, "--meta_train: shipped backbone to "
                    "start from.")
_M = meta_pretraining.MetaRecipe()
flags.DEFINE_integer("episodes", _M.episodes, "--meta_train: episodes.")
flags.DEFINE_integer("ways", _M.ways, "--meta_train: classes per episode.")
flags.DEFINE_integer("shots", _M.shots, "--meta_train: support per class.")
flags.DEFINE_integer("queries", _M.queries, "--meta_train: queries per class.")
flags.DEFINE_integer("eval_episodes", _M.eval_episodes, "--meta_train: test "
                     "episodes for the before/after accuracy.")


def _meta_main():
  recipe = meta_pretraining.MetaRecipe(
      episodes=FLAGS.episodes, ways=FLAGS.ways, shots=FLAGS.shots,
      queries=FLAGS.queries, eval_episodes=FLAGS.eval_episodes,
      learning_rate=FLAGS.learning_rate or _M.learning_rate,
      seed=FLAGS.seed or 0)
  model, record = meta_pretraining.meta_pretrain(
      FLAGS.init_from, dataset=FLAGS.dataset, recipe=recipe, name=FLAGS.name,
      max_train_samples=FLAGS.max_train_samples)
  record = pretrained.write_pretrained(
      model, FLAGS.name or f"{FLAGS.init_from}_meta", record, FLAGS.out_dir)
  logging.info("%s: episode accuracy %s -> %s", record["name"],
               record["episode_accuracy"]["before"],
               record["episode_accuracy"]["after"])


def main(argv):
  del argv
  if FLAGS.meta_train:
    if not FLAGS.init_from:
      raise app.UsageError("--meta_train needs --init_from=<shipped backbone>.")
    return _meta_main()
  if not FLAGS.model:
    raise app.UsageError("--model is required (or --meta_train).")
  config = pretraining.config_from_overrides(
      FLAGS.model, FLAGS.name,
      {k: FLAGS[k].value for k in ("resolution", "channels", "width_multiplier",
                                   "last_channels")},
      {k: FLAGS[k].value for k in ("epochs", "batch_size", "learning_rate",
                                   "label_smoothing", "max_shift", "flip",
                                   "seed")})
  model, record = pretraining.pretrain(
      dataset=FLAGS.dataset, max_train_samples=FLAGS.max_train_samples,
      progress=FLAGS.progress,
      **config)
  record = pretrained.write_pretrained(model, config["name"], record,
                                       FLAGS.out_dir)
  logging.info("%s: test accuracy %.4f, slice accuracy %.4f, %d bytes",
               config["name"], record["test_accuracy"],
               record["slice"]["accuracy"], record["weights_bytes"])


if __name__ == "__main__":
  app.run(main)
