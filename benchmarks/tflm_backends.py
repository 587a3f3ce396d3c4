"""The native TFLM runner against the tflite_micro wheel on builtin-only
models: bit-identity of outputs and parameters, and both measured arenas.

  TFLM_ROOT=/path/to/tflite-micro python -m benchmarks.tflm_backends \
      --model=tiny --method=tinytl_lb --resolution=32 --batch=2 --steps=4

Models: the lowered train step (--steps SGD steps, parameters read back),
the float predict model and the int8 inference model of the export.
"""
import sys

from absl import app
from absl import flags
import numpy as np

from tflite_tl.lower import quantize
from tflite_tl.lower import lower_model
from tflite_tl.verify import check as verify_check
from tflite_tl.verify import train_step as verify_lib
from tflite_tl.tflm import backend_compare
from tflite_tl.tflm.runner import train_inputs_order

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "tiny", "Backbone (shipped pretrained or zoo).")
flags.DEFINE_string("method", "tinytl_lb", "Transfer-learning method.")
flags.DEFINE_integer("resolution", 32, "Input side in pixels.")
flags.DEFINE_integer("batch", 2, "Train-step batch size.")
flags.DEFINE_integer("steps", 4, "Train steps (invokes) compared.")
flags.DEFINE_integer("seed", 0, "Seed of the model's new head and the data.")


def comparisons(model_name, method, resolution, batch, steps, seed):
  config = verify_check.VerifyConfig(model=model_name, method=method,
                                   resolution=resolution, batch=batch,
                                   seed=seed)
  model, _ = verify_check.build_model(config)
  lowered = lower_model(model, batch_size=batch,
                        learning_rate=config.learning_rate)
  predict = lowered.predict_tflite
  shape = tuple(int(d) for d in model.inputs[0].shape[1:])
  batches = verify_lib.random_batches(seed, steps, batch, shape,
                                      config.num_classes)
  rs = np.random.RandomState(seed)
  images = rs.rand(16, *shape).astype(np.float32)
  int8 = quantize.quantize_int8(model, images)
  label = f"{model_name} {method} {resolution} px"
  image_index, label_index = train_inputs_order(lowered.train_tflite)
  steps_train = []
  for x, y in batches:
    step = [None, None]
    step[image_index], step[label_index] = x, np.asarray(y, np.int32)
    steps_train.append(step)
  return [
      backend_compare.compare_backends(f"{label}, train step, batch {batch}",
                                       lowered.train_tflite, steps_train),
      backend_compare.compare_backends(f"{label}, predict (float)", predict,
                                       [[images[i:i + 1]] for i in range(4)]),
      backend_compare.compare_backends(
          f"{label}, inference (int8)", int8,
          [[rs.randint(-128, 128, (1,) + shape).astype(np.int8)]
           for _ in range(4)]),
  ]


def main(argv):
  del argv
  try:
    rows = comparisons(FLAGS.model, FLAGS.method, FLAGS.resolution,
                       FLAGS.batch, FLAGS.steps, FLAGS.seed)
  except (ValueError, RuntimeError) as e:
    print(f"tflm_backends failed: {e}", file=sys.stderr)
    return 1
  print(backend_compare.to_markdown(rows), end="")
  return 0


if __name__ == "__main__":
  app.run(main)
