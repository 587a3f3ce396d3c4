"""Builds TFLM's ``libtensorflow-microlite.a`` from ``$TFLM_ROOT``, cached.

TFLM's own Makefile does the build (``make -f tensorflow/lite/micro/tools/make/
Makefile microlite``), for the host (x86-64) or for Cortex-M4F
(``TARGET=cortex_m_generic TARGET_ARCH=cortex-m4+fp``), with ``GENDIR`` set
to a cache directory outside both trees, so nothing is written into
``TFLM_ROOT``::

  ${TFLITE_TL_CACHE:-~/.cache/tflite-tl}/tflm/<tflm identity>/<target>-<flags hash>/
    gen/           TFLM's GENDIR (objects, lib/libtensorflow-microlite.a)
    build.json     the compile flags TFLM used (CXXFLAGS, INCLUDES, ...): code
                   linked against the library is compiled with exactly these
    build.log      make's output

The TFLM identity is the git commit of a checkout (plus a hash of its local
changes), else a hash of the tree's file list with sizes and mtimes. A second
build of the same tree, target and flags prints "cached" and runs nothing; a
lock file serialises concurrent builds of one configuration.

Standard library only (no TensorFlow import). Command line:
``python -m tflite_tl.tflm.build`` or ``scripts/tflm_build.sh``.
"""
import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

TFLM_ROOT_ENV = "TFLM_ROOT"
CACHE_ENV = "TFLITE_TL_CACHE"
MAKEFILE = "tensorflow/lite/micro/tools/make/Makefile"
LIBRARY = "libtensorflow-microlite.a"
REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
ARM_PACKAGES = ("gcc-arm-none-eabi", "libnewlib-arm-none-eabi",
                "libstdc++-arm-none-eabi-newlib")
# Third-party trees TFLM's Makefile would otherwise download into TFLM_ROOT.
_DOWNLOADS = "tensorflow/lite/micro/tools/make/downloads"
_HOST_DOWNLOADS = ("flatbuffers", "gemmlowp", "kissfft", "ruy")
_ARM_DOWNLOADS = _HOST_DOWNLOADS + ("cmsis",)
# Make variables recorded in build.json (see TFLM's `make print-VAR`).
_FLAG_VARS = ("CXX", "CC", "AR", "CXXFLAGS", "CCFLAGS", "INCLUDES", "LDFLAGS",
              "MICROLITE_LIBS", "CORE_OPTIMIZATION_LEVEL",
              "KERNEL_OPTIMIZATION_LEVEL")
_BUILD_FORMAT = 1  # bump when build.json's content changes


class TflmBuildError(RuntimeError):
  """TFLM could not be built (no TFLM_ROOT, missing toolchain, make failed)."""


@dataclasses.dataclass(frozen=True)
class Target:
  """One TFLM build configuration."""
  name: str
  make_args: Tuple[str, ...]
  compiler: str  # the C++ compiler TFLM's Makefile picks for this target
  downloads: Tuple[str, ...]
  packages: Tuple[str, ...]  # Debian packages that provide the compiler


def _arm_toolchain_root() -> str:
  found = shutil.which("arm-none-eabi-g++")
  return os.path.dirname(found) + "/" if found else "/usr/bin/"


def get_target(name: str, build_type: str = "default") -> Target:
  """The host (x86-64) or Cortex-M4F (hard float) build of TFLM."""
  common = (f"BUILD_TYPE={build_type}",)
  if name == "host":
    return Target("host", common, "g++", _HOST_DOWNLOADS, ("g++", "make"))
  if name == "cortex-m4f":
    root = _arm_toolchain_root()
    return Target(
        "cortex-m4f",
        ("TARGET=cortex_m_generic", "TARGET_ARCH=cortex-m4+fp",
         f"TARGET_TOOLCHAIN_ROOT={root}") + common,
        root + "arm-none-eabi-g++", _ARM_DOWNLOADS, ARM_PACKAGES)
  raise TflmBuildError(f"unknown TFLM target {name!r}; use one of {TARGETS}")


TARGETS = ("host", "cortex-m4f")


def tflm_root(root: Optional[os.PathLike] = None) -> pathlib.Path:
  """``root`` or ``$TFLM_ROOT``, checked to be a TFLM source tree."""
  value = root if root is not None else os.environ.get(TFLM_ROOT_ENV)
  if not value:
    raise TflmBuildError(
        f"{TFLM_ROOT_ENV} is not set: point it at a tflite-micro source tree "
        "(export TFLM_ROOT=/path/to/tflite-micro) to build TFLM.")
  path = pathlib.Path(value).expanduser().resolve()
  if not (path / MAKEFILE).is_file():
    raise TflmBuildError(
        f"{TFLM_ROOT_ENV}={value} is not a tflite-micro source tree "
        f"({MAKEFILE} not found).")
  return path


def cache_root() -> pathlib.Path:
  default = pathlib.Path.home() / ".cache" / "tflite-tl"
  return pathlib.Path(os.environ.get(CACHE_ENV) or default).expanduser()


def _git(root: pathlib.Path, *args: str) -> Optional[str]:
  try:
    proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True,
                          text=True, check=False)
  except FileNotFoundError:
    return None
  return proc.stdout if proc.returncode == 0 else None


def tflm_identity(root: pathlib.Path) -> str:
  """``git-<commit>`` (``-dirty<hash>`` with local changes), else ``tree-<hash
  of the file list, sizes and mtimes>``. Generated ``gen/`` trees are skipped."""
  if (root / ".git").exists():
    head = _git(root, "rev-parse", "HEAD")
    if head:
      identity = "git-" + head.strip()[:12]
      status = _git(root, "status", "--porcelain", "--untracked-files=no")
      if status and status.strip():
        diff = _git(root, "diff", "HEAD") or ""
        identity += "-dirty" + hashlib.sha256(diff.encode()).hexdigest()[:8]
      return identity
  h = hashlib.sha256()
  for dirpath, dirnames, filenames in os.walk(root):
    rel = os.path.relpath(dirpath, root)
    dirnames[:] = sorted(d for d in dirnames
                         if not (rel == "." and d in ("gen", ".git")))
    for name in sorted(filenames):
      path = os.path.join(dirpath, name)
      try:
        st = os.stat(path)
      except OSError:  # a dangling link
        continue
      h.update(f"{os.path.join(rel, name)}\0{st.st_size}\0{st.st_mtime_ns}\n"
               .encode())
  return "tree-" + h.hexdigest()[:16]


def _compiler_version(compiler: str, packages: Sequence[str]) -> str:
  if shutil.which(compiler) is None:
    raise TflmBuildError(
        f"compiler {compiler} not found; install it with: apt-get install "
        f"--no-install-recommends {' '.join(packages)}")
  proc = subprocess.run([compiler, "--version"], capture_output=True,
                        text=True, check=False)
  return proc.stdout.splitlines()[0] if proc.stdout else compiler


def _flags_hash(target: Target, version: str) -> str:
  h = hashlib.sha256()
  for part in (str(_BUILD_FORMAT), *target.make_args, target.compiler,
               version):
    h.update(part.encode() + b"\0")
  return h.hexdigest()[:12]


@dataclasses.dataclass(frozen=True)
class TflmBuild:
  """A built TFLM library and the flags to compile code against it."""
  target: str
  tflm_root: pathlib.Path
  identity: str
  directory: pathlib.Path
  library: pathlib.Path
  cxx: str
  cxxflags: Tuple[str, ...]  # CXXFLAGS (no optimisation level)
  includes: Tuple[str, ...]  # absolute -I paths
  ldflags: Tuple[str, ...]
  libs: Tuple[str, ...]
  optimization: str  # TFLM's KERNEL_OPTIMIZATION_LEVEL (kernels are ours too)
  cc: str = ""  # C compiler and CCFLAGS, for C sources
  ccflags: Tuple[str, ...] = ()

  def compile_command(self, source: os.PathLike, output: os.PathLike,
                      extra: Sequence[str] = ()) -> List[str]:
    """g++/arm-none-eabi-g++ (gcc for a .c file) with TFLM's flags and
    includes plus the repository root, compiling ``source`` to ``output``."""
    if str(source).endswith(".c"):
      compiler, flags = self.cc, self.ccflags
    else:
      compiler, flags = self.cxx, self.cxxflags
    return [compiler, *flags, self.optimization, *extra, *self.includes,
            f"-I{REPO_ROOT}", "-c", str(source), "-o", str(output)]

  def link_command(self, objects: Sequence[os.PathLike], output: os.PathLike,
                   extra: Sequence[str] = ()) -> List[str]:
    return [self.cxx, *self.cxxflags, *extra, "-o", str(output),
            *map(str, objects), str(self.library), *self.ldflags, *self.libs]

  def to_json(self) -> dict:
    data = dataclasses.asdict(self)
    for key in ("tflm_root", "directory", "library"):
      data[key] = str(data[key])
    return data

  @classmethod
  def from_json(cls, data: dict) -> "TflmBuild":
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs = {k: v for k, v in data.items() if k in known}
    for key in ("tflm_root", "directory", "library"):
      kwargs[key] = pathlib.Path(kwargs[key])
    for key in ("cxxflags", "includes", "ldflags", "libs"):
      kwargs[key] = tuple(kwargs[key])
    return cls(**kwargs)


def _make(root: pathlib.Path, gendir: pathlib.Path, spec: Target,
          goals: Sequence[str], jobs: int = 1, log=None) -> str:
  cmd = ["make", "-C", str(root), "-f", MAKEFILE, f"-j{jobs}",
         f"GENDIR={gendir}/", *spec.make_args, *goals]
  if shutil.which("nice"):
    cmd = ["nice", "-n", "10"] + cmd
  proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                        text=True, check=False)
  if log is not None:
    log.write(f"$ {shlex.join(cmd)}\n{proc.stdout}\n")
  if proc.returncode != 0:
    raise TflmBuildError(
        f"TFLM build failed ({shlex.join(cmd)}), exit {proc.returncode}:\n"
        + "\n".join(proc.stdout.strip().splitlines()[-30:]))
  return proc.stdout


def _absolute_include(flag: str, root: pathlib.Path) -> str:
  path = flag[2:]
  if not path:
    return flag
  return "-I" + str((root / path).resolve()) if not os.path.isabs(path) else flag


def _read_flags(root: pathlib.Path, gendir: pathlib.Path,
                spec: Target) -> Dict[str, List[str]]:
  """TFLM's make variables, via its own ``print-VAR`` rule (one line each:
  ``VAR=value``), split like the shell that runs make's recipes."""
  text = _make(root, gendir, spec, [f"print-{v}" for v in _FLAG_VARS])
  values = {}
  for line in text.splitlines():
    match = re.match(r"^([A-Z_]+)=(.*)$", line)
    if match and match.group(1) in _FLAG_VARS:
      values[match.group(1)] = shlex.split(match.group(2))
  missing = [v for v in _FLAG_VARS if v not in values]
  if missing:
    raise TflmBuildError(f"TFLM's Makefile did not print {missing}:\n{text}")
  return values


def _check_downloads(root: pathlib.Path, spec: Target) -> None:
  missing = [d for d in spec.downloads if not (root / _DOWNLOADS / d).is_dir()]
  if missing:
    raise TflmBuildError(
        f"{root / _DOWNLOADS} lacks {', '.join(missing)}, which TFLM's Makefile "
        "would download into TFLM_ROOT. Fetch them once in the TFLM tree "
        f"(cd {root} && make -f {MAKEFILE} {' '.join(spec.make_args)} "
        "third_party_downloads), or use a tree that has them.")


def _locate(target: str, root: Optional[os.PathLike], build_type: str):
  root_path = tflm_root(root)
  spec = get_target(target, build_type)
  version = _compiler_version(spec.compiler, spec.packages)
  identity = tflm_identity(root_path)
  directory = (cache_root() / "tflm" / identity /
               f"{spec.name}-{_flags_hash(spec, version)}")
  return root_path, spec, identity, directory


@contextlib.contextmanager
def _locked(directory: pathlib.Path):
  """One process builds a configuration; the others wait, then find it."""
  directory.parent.mkdir(parents=True, exist_ok=True)
  with open(directory.parent / f"{directory.name}.lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    yield


def _cached(stamp: pathlib.Path, need_library: bool) -> Optional[TflmBuild]:
  if not stamp.is_file():
    return None
  build = TflmBuild.from_json(json.loads(stamp.read_text()))
  return build if build.library.is_file() or not need_library else None


def _write_stamp(stamp: pathlib.Path, data: dict) -> None:
  tmp = stamp.with_suffix(".tmp")
  tmp.write_text(json.dumps(data, indent=1) + "\n")
  os.replace(tmp, stamp)  # atomic: a stamp is complete or absent


def _describe_build(root_path: pathlib.Path, spec: Target, identity: str,
                    directory: pathlib.Path) -> TflmBuild:
  flags = _read_flags(root_path, directory / "gen", spec)
  return TflmBuild(
      target=spec.name, tflm_root=root_path, identity=identity,
      directory=directory, library=directory / "gen" / "lib" / LIBRARY,
      cxx=shutil.which(flags["CXX"][0]) or flags["CXX"][0],
      cxxflags=tuple(flags["CXXFLAGS"]),
      includes=tuple(_absolute_include(f, root_path)
                     for f in flags["INCLUDES"]),
      ldflags=tuple(flags["LDFLAGS"]), libs=tuple(flags["MICROLITE_LIBS"]),
      optimization=" ".join(flags["KERNEL_OPTIMIZATION_LEVEL"]) or "-O2",
      cc=shutil.which(flags["CC"][0]) or flags["CC"][0],
      ccflags=tuple(flags["CCFLAGS"]))


def _refresh(build: TflmBuild, root_path: pathlib.Path, spec: Target,
             stamp: pathlib.Path) -> TflmBuild:
  """Re-reads the flags of a build cached before build.json recorded all
  of them (seconds: TFLM's ``make print-VAR``), keeping its library."""
  if build.ccflags:
    return build
  fresh = _describe_build(root_path, spec, build.identity, build.directory)
  data = json.loads(stamp.read_text())
  data.update(fresh.to_json())
  _write_stamp(stamp, data)
  return fresh


def tflm_flags(target: str = "host", root: Optional[os.PathLike] = None, *,
               build_type: str = "default") -> TflmBuild:
  """TFLM's compile flags for ``target`` without building the library (a
  few seconds: TFLM's ``make print-VAR``), enough to compile code against
  TFLM's headers. ``library`` exists only once ``build_tflm`` has run."""
  root_path, spec, identity, directory = _locate(target, root, build_type)
  with _locked(directory):
    for name, need_library in (("build.json", True), ("flags.json", False)):
      build = _cached(directory / name, need_library)
      if build is not None:
        return _refresh(build, root_path, spec, directory / name)
    _check_downloads(root_path, spec)
    directory.mkdir(parents=True, exist_ok=True)
    build = _describe_build(root_path, spec, identity, directory)
    _write_stamp(directory / "flags.json", build.to_json())
    return build


def build_tflm(target: str = "host", root: Optional[os.PathLike] = None, *,
               jobs: int = 2, force: bool = False, build_type: str = "default",
               quiet: bool = False) -> TflmBuild:
  """Builds (or finds in the cache) TFLM's library for ``target``.

  Args:
    target: "host" or "cortex-m4f".
    root: the TFLM source tree (default ``$TFLM_ROOT``).
    jobs: parallel make jobs (run under ``nice -n 10``).
    force: rebuild even if the cache has this configuration.
    build_type: TFLM's BUILD_TYPE (default, release_with_logs, release, ...).
    quiet: print nothing (else "cached: DIR" or "built: DIR in N s").
  Raises:
    TflmBuildError: no TFLM tree, no toolchain, missing third-party trees,
      or a compile error (with the tail of make's output).
  """
  root_path, spec, identity, directory = _locate(target, root, build_type)
  say = (lambda *_: None) if quiet else (
      lambda msg: print(msg, file=sys.stderr, flush=True))
  with _locked(directory):
    stamp = directory / "build.json"
    build = None if force else _cached(stamp, need_library=True)
    if build is not None:
      say(f"cached: TFLM {identity} {target} at {directory}")
      return _refresh(build, root_path, spec, stamp)
    _check_downloads(root_path, spec)
    if force and directory.exists():
      shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    say(f"building TFLM {identity} for {target} into {directory} "
        f"(make -j{jobs}; several minutes) ...")
    start = time.monotonic()
    with open(directory / "build.log", "w", encoding="utf-8") as log:
      _make(root_path, directory / "gen", spec, ["microlite"], jobs=jobs,
            log=log)
    build = _describe_build(root_path, spec, identity, directory)
    if not build.library.is_file():
      raise TflmBuildError(f"make succeeded but {build.library} is missing; "
                           f"see {directory / 'build.log'}")
    data = build.to_json()
    data["seconds"] = round(time.monotonic() - start, 1)
    _write_stamp(stamp, data)  # written last: marks the build complete
    say(f"built: TFLM {identity} {target} in {data['seconds']:.0f} s at "
        f"{directory}")
    return build
