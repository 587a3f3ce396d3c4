"""Images from a folder per class (the layout users collect on their own).

::

    root/cat/0001.jpg          or    root/train/cat/0001.jpg
    root/dog/a.png                   root/test/cat/0102.jpg ...

Classes are the sub-directory names, sorted; files are read in sorted name
order, so the result does not depend on the file system. PNG, JPEG and BMP are
read with Pillow. When ``root`` holds exactly ``train`` and ``test``
sub-directories (with the same classes) that split is kept; otherwise the
loader splits by seed. Images of any size are converted one by one to the
requested resolution and channels.
"""
import logging
import os
from typing import List, Optional, Tuple

import numpy as np

from tflite_tl.data.raw import RawImages
from tflite_tl.data.transforms import Resolution, to_model_input

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
SPLIT_DIRS = ("test", "train")
# Files that are never images and never worth a warning.
_QUIET_FILES = ("thumbs.db", "desktop.ini")

log = logging.getLogger(__name__)


def _subdirs(path: str) -> List[str]:
  return sorted(d for d in os.listdir(path)
                if os.path.isdir(os.path.join(path, d)) and not d.startswith("."))


def _images_in(path: str) -> List[str]:
  """Image files of ``path``; other files are skipped with one warning (a
  README or a .txt of labels beside the images is common)."""
  names = sorted(f for f in os.listdir(path) if not f.startswith(".")
                 and os.path.isfile(os.path.join(path, f)))
  images = [f for f in names if f.lower().endswith(EXTENSIONS)]
  other = [f for f in names
           if f not in images and f.lower() not in _QUIET_FILES]
  if other:
    shown = ", ".join(other[:3]) + (f" and {len(other) - 3} more"
                                    if len(other) > 3 else "")
    log.warning("Folder dataset: skipped %d file(s) in %s that are not "
                "images (%s): %s.", len(other), path, ", ".join(EXTENSIONS),
                shown)
  return images


def _read_image(path: str, resolution: Resolution, channels: int) -> np.ndarray:
  # Imported here: only folders of image files need Pillow.
  from PIL import Image, UnidentifiedImageError  # pylint: disable=g-import-not-at-top
  try:
    with Image.open(path) as img:
      # Palette, CMYK, 16-bit and alpha modes all go through Pillow's own
      # conversion; our luma conversion then handles RGB -> gray.
      gray = img.mode in ("1", "L", "LA", "I", "I;16", "F")
      if img.mode in ("I", "I;16", "F"):
        pixels = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if img.mode != "F" else max(float(pixels.max()), 1.0)
        pixels = np.clip(pixels / peak, 0.0, 1.0).astype(np.float32)
      else:
        pixels = np.asarray(img.convert("L" if gray else "RGB"))
  except (UnidentifiedImageError, OSError) as e:
    raise ValueError(f"Cannot read image {path}: {e}. Supported formats: "
                     f"{', '.join(EXTENSIONS)}.") from e
  return to_model_input(pixels[None], resolution, channels)[0]


def _scan(root: str, class_names: Optional[Tuple[str, ...]]):
  names = tuple(_subdirs(root))
  if not names:
    raise ValueError(f"Folder dataset {root!r} has no class sub-directories. "
                     "Expected root/<class_name>/<image files>.")
  if class_names is not None and names != class_names:
    raise ValueError(f"Folder dataset {root!r}: the classes of train/ "
                     f"{list(class_names)} and test/ {list(names)} differ.")
  files, labels = [], []
  for label, name in enumerate(names):
    found = _images_in(os.path.join(root, name))
    if not found:
      raise ValueError(f"Folder dataset {root!r}: class {name!r} has no "
                       f"images ({', '.join(EXTENSIONS)}).")
    files += [os.path.join(root, name, f) for f in found]
    labels += [label] * len(found)
  if len(names) < 2:
    raise ValueError(f"Folder dataset {root!r} has one class ({names[0]!r}); "
                     "a classifier needs at least two. Add a sub-directory "
                     "of images for each other class (e.g. "
                     f"{os.path.join(root, 'other')}).")
  return names, files, labels


def read(root: str, resolution: Resolution, channels: int) -> RawImages:
  """Reads ``root`` and converts every image to ``resolution``/``channels``."""
  if not os.path.isdir(root):
    raise FileNotFoundError(f"Folder dataset: directory {root!r} does not exist.")
  top = _subdirs(root)
  if tuple(top) == SPLIT_DIRS:
    names, train_files, train_labels = _scan(os.path.join(root, "train"), None)
    _, test_files, test_labels = _scan(os.path.join(root, "test"), names)
    files, labels = train_files + test_files, train_labels + test_labels
    is_test = np.arange(len(files)) >= len(train_files)
  else:
    names, files, labels = _scan(root, None)
    is_test = None
  images = np.stack([_read_image(f, resolution, channels) for f in files])
  return RawImages(images, np.asarray(labels, np.int64), names, is_test)
