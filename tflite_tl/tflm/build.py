"""Builds TFLM from $TFLM_ROOT into the cache (a second run prints "cached").

  python -m tflite_tl.tflm.build --target=host,cortex-m4f --print_flags
  python -m tflite_tl.tflm.build --target=host --runner

Per target it also compiles the TL_* adapters (tflm_kernels/tflm/*.cc) against
that build with -Wall -Wextra -Werror; --runner links the native TFLM runner
(host). Cache layout: tflite_tl/tflm/tflm_library.py, native_build.py.
"""
import shlex

from absl import app, flags

from tflite_tl.tflm import native_build
from tflite_tl.tflm import tflm_library

_TARGETS = flags.DEFINE_list(
    "target", ["host"],
    f"TFLM targets to build: {', '.join(tflm_library.TARGETS)}.")
_TFLM_ROOT = flags.DEFINE_string(
    "tflm_root", None, f"TFLM source tree (default ${tflm_library.TFLM_ROOT_ENV}).")
_JOBS = flags.DEFINE_integer("jobs", 2, "Parallel make jobs (under nice -n 10).")
_FORCE = flags.DEFINE_bool("force", False, "Rebuild even when cached.")
_BUILD_TYPE = flags.DEFINE_string(
    "build_type", "default", "TFLM BUILD_TYPE (default, release_with_logs, ...).")
_PRINT_FLAGS = flags.DEFINE_bool(
    "print_flags", False, "Print the compile flags TFLM used for each target.")
_RUNNER = flags.DEFINE_bool(
    "runner", False, "Also build the native TFLM runner (host).")


def describe(build: tflm_library.TflmBuild) -> str:
  """The library and the flags to compile code against it, one per line."""
  return "\n".join([
      f"LIBRARY={build.library}",
      f"CXX={build.cxx}",
      f"CXXFLAGS={shlex.join(build.cxxflags)} {build.optimization}",
      f"INCLUDES={shlex.join(build.includes)}",
      f"LDFLAGS={shlex.join(build.ldflags + build.libs)}"])


def main(argv):
  del argv
  try:
    for target in _TARGETS.value:
      build = tflm_library.build_tflm(
          target, _TFLM_ROOT.value, jobs=_JOBS.value, force=_FORCE.value,
          build_type=_BUILD_TYPE.value)
      ops = native_build.build_training_ops(build=build, jobs=_JOBS.value)
      print(describe(build) if _PRINT_FLAGS.value else build.library)
      print(f"TL_OPS={ops}")
    if _RUNNER.value:
      print(f"RUNNER={native_build.build_runner(_TFLM_ROOT.value, jobs=_JOBS.value)}")
  except tflm_library.TflmBuildError as e:
    raise SystemExit(f"error: {e}") from None


if __name__ == "__main__":
  app.run(main)
