"""Building TFLM from $TFLM_ROOT: identity, cache, lock, flags, and our C++
(the TL_* adapters) compiled against it for the host and Cortex-M4F."""
import pathlib
import subprocess
import threading
import time

import pytest

from tflite_tl.tflm import native_build
from tflite_tl.tflm import tflm_library


def test_tree_identity_follows_files_not_generated_output(tmp_path):
  (tmp_path / "a.cc").write_text("int a;")
  first = tflm_library.tflm_identity(tmp_path)
  assert first.startswith("tree-")
  assert tflm_library.tflm_identity(tmp_path) == first
  (tmp_path / "gen").mkdir()  # an in-tree build's output is not the source
  (tmp_path / "gen" / "x.o").write_text("")
  assert tflm_library.tflm_identity(tmp_path) == first
  (tmp_path / "b.h").write_text("")
  assert tflm_library.tflm_identity(tmp_path) != first


def test_git_checkout_identity_is_its_commit(tmp_path):
  git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
  subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
  (tmp_path / "a.cc").write_text("int a;")
  subprocess.run(git + ["add", "a.cc"], check=True)
  subprocess.run(git + ["commit", "-qm", "x"], check=True)
  head = subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True,
                        text=True, check=True).stdout.strip()
  assert tflm_library.tflm_identity(tmp_path) == "git-" + head[:12]
  (tmp_path / "a.cc").write_text("int b;")
  assert tflm_library.tflm_identity(tmp_path).startswith(
      f"git-{head[:12]}-dirty")


def test_missing_or_wrong_tflm_root_is_explained(monkeypatch, tmp_path):
  monkeypatch.delenv("TFLM_ROOT", raising=False)
  with pytest.raises(tflm_library.TflmBuildError, match="TFLM_ROOT is not set"):
    tflm_library.tflm_root()
  with pytest.raises(tflm_library.TflmBuildError, match="not a tflite-micro"):
    tflm_library.tflm_root(tmp_path)


def test_missing_third_party_trees_are_named(monkeypatch, tmp_path):
  makefile = tmp_path / tflm_library.MAKEFILE
  makefile.parent.mkdir(parents=True)
  makefile.write_text("")
  monkeypatch.setenv("TFLITE_TL_CACHE", str(tmp_path / "cache"))
  with pytest.raises(tflm_library.TflmBuildError,
                     match="lacks flatbuffers, gemmlowp, kissfft, ruy"):
    tflm_library.build_tflm("host", tmp_path, quiet=True)


def test_concurrent_builds_of_one_configuration_wait(tmp_path):
  directory = tmp_path / "host-x"
  acquired = []

  def second():
    with tflm_library._locked(directory):  # pylint: disable=protected-access
      acquired.append(time.monotonic())

  with tflm_library._locked(directory):  # pylint: disable=protected-access
    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(0.3)
    assert not acquired  # blocked while the first holds the lock
    released = time.monotonic()
  thread.join(5)
  assert acquired and acquired[0] >= released


_RESOLVER = """
  TfLiteStatus AddCustom(const char* name, const TFLMRegistration* r) {}
  TfLiteStatus AddAbs(const TFLMRegistration& registration = Register_ABS()) {}
  TfLiteStatus AddDecode() { return AddCustom("TFLM_DECODE", &r); }
  TfLiteStatus AddIrfft(const TFLMRegistration* registration =
                            tflite::tflm_signal::Register_IRFFT()) {}
 private:
  TfLiteStatus AddBuiltin(tflite::BuiltinOperator op,
                          const TFLMRegistration& registration,
                          TfLiteBridgeBuiltinParseFunction parser) {}
"""


def test_every_argument_free_add_of_the_resolver_is_an_op():
  assert native_build.builtin_op_adders(_RESOLVER) == ["Abs", "Decode", "Irfft"]


def test_resolver_of_tflm_root_has_the_builtins_we_lower_to(tflm_root):
  header = pathlib.Path(tflm_root) / "tensorflow/lite/micro/micro_mutable_op_resolver.h"
  names = native_build.builtin_op_adders(header.read_text())
  for op in ("Conv2D", "DepthwiseConv2D", "VarHandle", "ReadVariable",
             "AssignVariable", "CallOnce", "BatchMatMul", "TransposeConv"):
    assert op in names
  assert len(names) > 100


def test_host_library_is_cached_and_leaves_tflm_root_unchanged(tflm_root, capfd):
  build = tflm_library.build_tflm("host")
  capfd.readouterr()
  again = tflm_library.build_tflm("host")
  assert "cached" in capfd.readouterr().err
  assert again == build and build.library.is_file()
  # The tree's identity covers every file's size and mtime: a build that
  # wrote into TFLM_ROOT would have changed it.
  assert tflm_library.tflm_identity(pathlib.Path(tflm_root)) == build.identity
  assert str(tflm_library.cache_root()) in str(build.directory)
  assert "-DTF_LITE_STATIC_MEMORY" in build.cxxflags
  assert all(pathlib.Path(i[2:]).is_absolute() for i in build.includes)


@pytest.mark.parametrize("target", tflm_library.TARGETS)
def test_adapters_compile_with_werror_against_tflm(tflm_root, target):
  del tflm_root
  archive = native_build.build_training_ops(target)
  members = subprocess.run(["ar", "t", str(archive)], capture_output=True,
                           text=True, check=True).stdout.split()
  assert sorted(members) == sorted(
      p.stem + ".o" for p in native_build.adapter_sources())
  if target == "cortex-m4f":
    build = tflm_library.tflm_flags(target)
    assert "-mfloat-abi=hard" in build.cxxflags
    attributes = subprocess.run(
        ["arm-none-eabi-readelf", "-A", str(archive)], capture_output=True,
        text=True, check=True).stdout
    assert "Tag_CPU_arch: v7E-M" in attributes  # Cortex-M4
    assert "Tag_FP_arch: VFPv4-D16" in attributes
    assert "Tag_ABI_VFP_args: VFP registers" in attributes
