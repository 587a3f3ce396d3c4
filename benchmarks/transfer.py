r"""Transfer-learning sweep: accuracy against training memory, per method.

Fine-tunes a shipped pretrained backbone on target datasets with each transfer
method (FT-Full, FT-Last, FT-Norm+Last, TinyTL-B/-L/-L+B) over several seeds,
recording test accuracy, analytic training memory, the measured TFLM arena of
the lowered train step, trainable parameters and wall time. Every finished run
is appended to a JSONL file; rerunning the same command skips finished runs, so
a killed sweep resumes where it stopped. Then writes the markdown report and
the accuracy-against-memory plots.

  python -m benchmarks.transfer --preset=quick
  python -m benchmarks.transfer --preset=full --benchmarks_md=BENCHMARKS.md
  python -m benchmarks.transfer --preset=quick --report_only
  python -m benchmarks.transfer --preset=quick --datasets=folder:/data/mine
  python -m benchmarks.transfer --preset=full --report_only --merge_from=part.jsonl
  python -m benchmarks.transfer --preset=full --report_only --remeasure_arena
  python -m benchmarks.transfer --preset=full --executor=ray --ray_address=HEAD:6379
  python -m benchmarks.transfer --preset=int8        # float vs int8 QAS / no QAS
  python -m benchmarks.transfer --preset=quick --kernels=tl  # arenas of the TL_* step
"""
import sys

from absl import app, flags, logging

from benchmarks.transfer_lib import cli

FLAGS = flags.FLAGS
flags.DEFINE_enum("preset", "quick", ["quick", "full", "tinytrain", "int8"],
                  "Sweep to run: 'quick' (about 3 min on 2 idle cores), 'full' "
                  "(about 2.3 h), 'tinytrain' (the sparse-update methods and "
                  "their ablations, docs/tinytrain.md) or 'int8' (float "
                  "against int8 training with and without QAS, SGD).")
flags.DEFINE_string("results", None, "JSONL results file (default "
                    "benchmarks/results/transfer_<preset>.jsonl).")
flags.DEFINE_string("out_dir", "benchmarks/results",
                    "Directory for the markdown report and PNG plots.")
flags.DEFINE_string("benchmarks_md", None, "Also write the report as a marked "
                    "section into this markdown file (e.g. BENCHMARKS.md).")
flags.DEFINE_list("methods", None, "Override the preset's methods.")
flags.DEFINE_list("datasets", None, "Override the preset's datasets (names "
                  "from tflite_tl.data.list_datasets() or folder:<path>).")
flags.DEFINE_list("seeds", None, "Override the preset's seeds (integers).")
flags.DEFINE_list("shots", None, "Override the preset's shot settings: "
                  "integers (images per class) or 'full'.")
flags.DEFINE_list("backbones", None, "Override the preset's backbones.")
flags.DEFINE_integer("epochs", None, "Override the preset's epochs.")
flags.DEFINE_integer("max_runs", None, "Stop after this many new runs "
                     "(resume later with the same command).")
flags.DEFINE_bool("measure_arena", True, "Lower each (method, resolution, "
                  "batch, classes) and measure its TFLM arena (cached).")
flags.DEFINE_bool("ablations", True, "Include the preset's ablation grids.")
flags.DEFINE_bool("report_only", False, "Only rebuild report and plots from "
                  "the results file.")
flags.DEFINE_bool("progress", True, "Show the progress bar.")
flags.DEFINE_bool("remeasure_arena", False, "Lower every graph of the "
                  "results file again and rewrite its measured TFLM arena "
                  "(after a change to the lowering; accuracies are kept).")
flags.DEFINE_enum("executor", "local", list(cli.EXECUTORS),
                  "Where runs execute: 'local' (one after another in this "
                  "process) or 'ray' (each run, arena included, a Ray task; "
                  "this process keeps the results file).")
flags.DEFINE_string("ray_address", None, "With --executor=ray: the cluster "
                    "to join (head 'host:port', or 'auto' for the one "
                    "started on this machine by `ray start`). Default: "
                    "RAY_ADDRESS if set, else a Ray instance on this machine "
                    "for the sweep only.")
flags.DEFINE_enum("kernels", None, ["builtin", "tl"], "Lower every run "
                  "with this kernel flavor (default: the preset's; 'tl' "
                  "needs TFLM_ROOT). It changes the measured arena only.")
flags.DEFINE_enum("precision", None, ["float", "int8"], "Train every run in "
                  "this precision (default: the preset's). int8: the arena "
                  "is the int8 step's and the host training is the device's "
                  "int8 step, so accuracy describes it; implies --kernels=tl "
                  "and needs an SGD preset (--preset=int8).")
flags.DEFINE_bool("qas", None, "int8: quantization-aware scaling of the "
                  "updates (--noqas: plain SGD on the integer copies). "
                  "Default: the preset's, QAS for --precision=int8.")
flags.DEFINE_list("merge_from", None, "First add the runs of these results "
                  "files (parts of the sweep run in parallel) that --results "
                  "lacks.")


def main(argv):
  del argv
  if not FLAGS["verbosity"].present:
    # The TFLite converter logs every SavedModel it writes at INFO.
    logging.set_verbosity(logging.WARNING)
  options = cli.Options(
      preset=FLAGS.preset, results=FLAGS.results, out_dir=FLAGS.out_dir,
      benchmarks_md=FLAGS.benchmarks_md, methods=FLAGS.methods,
      datasets=FLAGS.datasets, seeds=FLAGS.seeds, shots=FLAGS.shots,
      backbones=FLAGS.backbones, epochs=FLAGS.epochs, max_runs=FLAGS.max_runs,
      measure_arena=FLAGS.measure_arena, ablations=FLAGS.ablations,
      report_only=FLAGS.report_only, progress=FLAGS.progress,
      merge_from=FLAGS.merge_from, remeasure_arena=FLAGS.remeasure_arena,
      executor=FLAGS.executor, ray_address=FLAGS.ray_address,
      kernels=FLAGS.kernels, precision=FLAGS.precision, qas=FLAGS.qas,
      command=" ".join(["python -m benchmarks.transfer"] + sys.argv[1:]))
  try:
    cli.check_executor(options)
  except ValueError as e:
    raise app.UsageError(str(e)) from e
  return cli.run(options)


if __name__ == "__main__":
  app.run(main)
