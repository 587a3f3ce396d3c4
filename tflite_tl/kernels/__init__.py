"""Host (TensorFlow) access to the C++ training kernels of tflm_kernels/.

`ops` has one Python function per kernel; the first call compiles the custom-op
library if needed (see `build`). `goldens` reads and writes the golden files.
`tflm_ops` describes the TL_* TFLite Micro ops (tensors, custom options,
firmware sources) for code that emits or packages them.
"""
