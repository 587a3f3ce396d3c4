"""Export packages of the shipped ``tiny`` backbone for the firmware tests,
cached per process (several test modules share one lowering); see
tflite_tl.firmware.qemu_bench.tiny_export."""
import functools

from tflite_tl.firmware import instruction_counts
from tflite_tl.firmware import qemu_bench

NUM_CLASSES = qemu_bench.NUM_CLASSES
library_dir = instruction_counts.library_dir


@functools.lru_cache(maxsize=None)
def tiny_case(kernels="tl", precision="float", **kwargs):
  return qemu_bench.tiny_export(kernels, precision, **kwargs)
