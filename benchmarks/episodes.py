r"""Few-shot episodes on the offline targets, per backbone and method.

  python -m benchmarks.episodes --backbones=tiny,tiny_meta \
      --datasets=mnist,animal_mnist --episodes=10

5-way 5-shot episodes (15 queries per class) from each target's test split;
each method fine-tunes on the support set on the host and is scored on the
query set (``protonet``: nearest prototype, no training). Resumable: every
finished episode is a line of --results; the same command continues.
Prints the markdown table of docs/tinytrain.md (host training).
"""
from absl import app
from absl import flags

from benchmarks import episode_eval
from benchmarks.transfer_lib.store import ResultsStore

FLAGS = flags.FLAGS
flags.DEFINE_list("backbones", ["tiny", "tiny_meta"], "Shipped backbones; "
                  "the first is the reference of the difference columns.")
flags.DEFINE_list("datasets", ["mnist", "animal_mnist"], "Target datasets.")
flags.DEFINE_list("methods", ["protonet", "ft_last", "tinytl_lb", "tinytrain"],
                  "Methods (protonet = nearest prototype, no training).")
flags.DEFINE_integer("episodes", 10, "Episodes per cell.")
flags.DEFINE_integer("ways", 5, "Classes per episode.")
flags.DEFINE_integer("shots", 5, "Support images per class.")
flags.DEFINE_integer("queries", 15, "Query images per class.")
flags.DEFINE_integer("epochs", 30, "Fine-tuning epochs on the support set.")
flags.DEFINE_integer("memory_budget", 32 * 1024, "tinytrain's budget (bytes "
                     "of training state beyond inference, batch 8).")
flags.DEFINE_string("results", "benchmarks/results/episodes.jsonl",
                    "Resumable JSONL results.")
flags.DEFINE_integer("max_runs", None, "Stop after this many new episodes.")

# The transfer sweep's step sizes (benchmarks/transfer_lib/presets.py).
LEARNING_RATES = {"ft_full": 1e-3, "ft_last": 1e-2, "tinytrain": 1e-2,
                  "sparse_update": 1e-2}


def main(argv):
  del argv
  runs = episode_eval.plan(
      FLAGS.backbones, FLAGS.datasets, FLAGS.methods, FLAGS.episodes,
      ways=FLAGS.ways, shots=FLAGS.shots, queries=FLAGS.queries,
      epochs=FLAGS.epochs, learning_rates=LEARNING_RATES,
      method_options={"tinytrain": {"memory_budget": FLAGS.memory_budget}})
  episode_eval.run_all(runs, FLAGS.results, max_runs=FLAGS.max_runs)
  print(episode_eval.summary(ResultsStore(FLAGS.results).records(), runs))


if __name__ == "__main__":
  app.run(main)
