"""Firmware for kernel-flavor graphs: the library registers exactly the TL_*
ops the models use, ships their sources, describes the variable tensors the
trainer shares and saves, and compiles (host and Cortex-M4F, -Werror)."""
import re

import pytest

import firmware_fixtures as ff
from tflite_tl import atomic
from tflite_tl.firmware import compile_check
from tflite_tl.firmware import kernel_sources
from tflite_tl.firmware import package
from tflite_tl.flatbuffer.reader import op_counts
from tflite_tl.tflm import tflm_library


@pytest.fixture(scope="module", params=["float", "int8"])
def case(request, tflm_root):
  del tflm_root  # the arenas of TL_* graphs are measured in native TFLM
  return ff.tiny_case("tl", request.param)


def _used_tl_ops(spec):
  ops = set(op_counts(spec.train_tflite)) | set(op_counts(spec.predict_tflite))
  return sorted(o.split(":", 1)[1] for o in ops if o.startswith("CUSTOM:TL_"))


def test_resolver_registers_exactly_the_used_tl_ops(case):
  spec = case.spec
  header = package.model_sources(spec)["tl_op_resolver.h"]
  used = _used_tl_ops(spec)
  assert used and list(spec.tl_ops) == used
  registered = re.findall(r'AddCustom\("(TL_\w+)", tflite_tl::tflm::'
                          r'Register_(TL_\w+)\(\)\)', header)
  assert [a for a, _ in registered] == used
  assert all(a == b for a, b in registered)
  assert '#include "tflm_kernels/tflm/training_ops.h"' in header


def test_library_ships_the_kernels_it_registers(case):
  spec = case.spec
  files = package.arduino_library(spec)
  root = f"arduino/{spec.name}/src/"
  shipped = sorted(k[len(root):] for k in files
                   if k.startswith(root + "tflm_kernels/"))
  assert shipped == kernel_sources.source_files(spec.tl_ops)
  assert root + "tflm_kernels/tflm/op_utils.cc" in files
  # Only what the used ops need: an adapter of an unused op stays out.
  unused = set(kernel_sources.known_ops()) - set(spec.tl_ops)
  for op in unused:
    src = kernel_sources._registrations()[op]  # pylint: disable=protected-access
    if not any(kernel_sources._registrations()[u] == src  # pylint: disable=protected-access
               for u in spec.tl_ops):
      assert root + src not in files
  esp = package.esp_idf(spec)
  comp = f"esp-idf/components/{spec.name}"
  assert f"{comp}/include/tflm_kernels/tflm/op_utils.h" in esp
  assert f"{comp}/src/tflm_kernels/tflm/op_utils.cc" in esp
  assert '"src/tflm_kernels/tflm/op_utils.cc"' in esp[f"{comp}/CMakeLists.txt"]


def test_config_describes_variable_tensors(case):
  spec = case.spec
  assert spec.kernels == "tl" and spec.scratch_bytes == 0
  assert spec.images_int8 == (case.lowered.precision == "int8")
  names = {v.info.shared_name for v in spec.tensor_variables}
  assert {n for n in case.lowered.param_names} <= names
  # Every trained parameter is read by the predict model.
  assert all(v.predict_tensor >= 0 for v in spec.tensor_variables
             if v.info.shared_name in case.lowered.param_names)
  source = package.model_sources(spec)["tl_model_config.cc"]
  for v in spec.tensor_variables:
    assert (f'{{"", "{v.info.shared_name}", {v.info.num_bytes}u, '
            f"{v.info.initial_buffer}, {v.train_tensor}, "
            f"{v.predict_tensor}}}") in source
  header = package.model_sources(spec)["tl_model_config.h"]
  assert "constexpr uint32_t kScratchBytes = 0;" in header
  assert (f"constexpr bool kImagesInt8 = "
          f"{'true' if spec.images_int8 else 'false'};") in header
  ram, _ = package.memory_consumers(spec)
  assert ram["variable scratch"] == 0


def test_an_unknown_tl_op_is_named():
  with pytest.raises(kernel_sources.UnknownKernelError,
                     match="TL_NOT_A_KERNEL.*kernels='builtin'"):
    kernel_sources.registrations(["TL_NOT_A_KERNEL"])


# The Cortex-M4F compile (minutes per case) is -m slow; the host compile
# with the same flags and -Werror stays in CI.
@pytest.mark.parametrize("target", [
    t if t == "host" else pytest.param(t, marks=pytest.mark.slow)
    for t in tflm_library.TARGETS])
def test_tl_library_compiles_with_werror(case, target, tmp_path):
  atomic.write_tree(str(tmp_path), package.package_files(case.spec))
  report = compile_check.compile_export(tmp_path, target)
  src = f"arduino/{case.spec.name}/src"
  for name in ("tl_trainer.cc", "tl_app.cc", "tl_model_config.cc",
               "tflm_kernels/tflm/op_utils.cc",
               "tflm_kernels/tflm/softmax_xent.cc"):
    assert f"{src}/{name}" in report.compiled
