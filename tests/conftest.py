"""Shared fixtures. Tests that build TFLM from source take ``tflm_root`` and
skip, with one message naming TFLM_ROOT, where it is not set."""
import os

import pytest

from tflite_tl.tflm import native

TFLM_ROOT_SKIP = ("TFLM_ROOT is not set: tests that build TFLM from source "
                  "need a tflite-micro tree (export TFLM_ROOT=/path/to/"
                  "tflite-micro)")


@pytest.fixture(scope="session")
def tflm_root():
  """$TFLM_ROOT, or skip."""
  root = os.environ.get("TFLM_ROOT")
  if not root:
    pytest.skip(TFLM_ROOT_SKIP)
  return root


@pytest.fixture(scope="session")
def native_runner(tflm_root):
  """The native TFLM runner, built (or found in the cache) once."""
  del tflm_root
  return native.runner_executable()
