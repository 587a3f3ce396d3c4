"""Which datasets are installed, and what they look like once loaded."""
import dataclasses
import time
from typing import List, Optional, Sequence

from tflite_tl.data.errors import DatasetNotInstalledError
from tflite_tl.data.loader import dataset_info, list_datasets, load
from tflite_tl.data.transforms import Resolution


@dataclasses.dataclass(frozen=True)
class DatasetSummary:
  """One dataset as loaded at a resolution, or why it could not be."""
  name: str
  installed: bool
  train: int = 0
  test: int = 0
  classes: int = 0
  shape: tuple = ()
  megabytes: float = 0.0
  seconds: float = 0.0
  problem: Optional[str] = None

  def line(self) -> str:
    if not self.installed:
      return f"{self.name:14s} MISSING  {self.problem}"
    return (f"{self.name:14s} train {self.train:6d}  test {self.test:6d}  "
            f"classes {self.classes:3d}  image {'x'.join(map(str, self.shape))}"
            f"  {self.megabytes:8.1f} MB  {self.seconds:6.2f} s")


def summarize(resolution: Resolution, channels: int,
              names: Optional[Sequence[str]] = None) -> List[DatasetSummary]:
  """Loads each dataset (all by default) and reports sizes and load time.

  A missing dataset is reported with its install command instead of raising.
  """
  rows = []
  for name in names or list_datasets():
    if not name.startswith("folder:"):
      dataset_info(name)  # unknown names raise here, with the supported list
    start = time.perf_counter()
    try:
      ds = load(name, resolution=resolution, channels=channels)
    except DatasetNotInstalledError as e:
      rows.append(DatasetSummary(name, False, problem=str(e)))
      continue
    rows.append(DatasetSummary(
        name, True, len(ds.y_train), len(ds.y_test), ds.num_classes,
        ds.input_shape, (ds.x_train.nbytes + ds.x_test.nbytes) / 2**20,
        time.perf_counter() - start))
  return rows
