"""Lists the datasets, whether they are installed, and their loaded size.

  python -m tflite_tl.data --resolution=32 --channels=3
  python -m tflite_tl.data --names=fashion_mnist,folder:/path/to/images
"""
from absl import app, flags

from tflite_tl.data.summary import summarize

_RESOLUTION = flags.DEFINE_integer("resolution", 28, "Image side to load at.")
_CHANNELS = flags.DEFINE_enum("channels", "1", ["1", "3"], "1 gray, 3 RGB.")
_NAMES = flags.DEFINE_list("names", None, "Datasets (default: all named ones).")


def main(argv):
  del argv
  for row in summarize(_RESOLUTION.value, int(_CHANNELS.value), _NAMES.value):
    print(row.line())


if __name__ == "__main__":
  app.run(main)
