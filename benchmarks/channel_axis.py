r"""Which channel axis a channel-sparse conv trains on, measured.

Same layers, the same fraction of channels on each axis: every Conv2D of
the backbone that TinyTrain may choose trains its kernel on the top
``--fraction`` of its input channels, then of its output channels (Fisher
ranking on a 10-shot support set), biases frozen, head trained. For each
axis: the stored activations and training state the memory model gives
(modelled), and the arena of the lowered train step in TFLM (measured,
recording allocator; float, either kernel flavor).

  python -m benchmarks.channel_axis --model=tiny --resolution=32 --batch=8
  TFLM_ROOT=... python -m benchmarks.channel_axis --kernels=tl
"""
from absl import app
from absl import flags

from benchmarks.channel_axis_table import axis_rows
from benchmarks.channel_axis_table import format_rows

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "tiny", "Shipped backbone.")
flags.DEFINE_integer("resolution", 32, "Input side (px).")
flags.DEFINE_integer("batch", 8, "Batch of the train step.")
flags.DEFINE_float("fraction", 0.25, "Fraction of each layer's channels on "
                   "the chosen axis.", lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_string("dataset", "digits", "Target dataset (support set).")
flags.DEFINE_integer("shots", 10, "Support images per class.", lower_bound=1)
flags.DEFINE_integer("seed", 0, "Seed of the support set and head.")
flags.DEFINE_enum("kernels", "builtin", ["builtin", "tl"], "Kernel flavor of "
                  "the lowering (tl: the TL_* training kernels, needs "
                  "TFLM_ROOT).")


def main(argv):
  del argv
  rows = axis_rows(FLAGS.model, FLAGS.resolution, FLAGS.batch,
                   FLAGS.fraction, FLAGS.dataset, FLAGS.shots, FLAGS.seed,
                   FLAGS.kernels)
  print(f"{FLAGS.model}, {FLAGS.resolution} px, batch {FLAGS.batch}, "
        f"{FLAGS.fraction:.0%} of each conv's channels, {FLAGS.dataset} "
        f"{FLAGS.shots}-shot support, Fisher ranking, {FLAGS.kernels} float")
  print(format_rows(rows))


if __name__ == "__main__":
  app.run(main)
