"""The Ray backend of ``distributed.run_distributed_sweep``.

Each run (training, evaluation, memory model and TFLM arena measurement) is
one Ray task of one CPU running ``distributed.run_task``. Ray's own retries
are off (``max_retries=0``): a task lost with its worker surfaces here as
``RunLost`` and the driver submits it again itself, so that it can count and
show the re-runs; an exception raised by the run is ``RunFailed``.

Without an address a private Ray instance is started on this machine for the
sweep, bound to the loopback interface, and stopped at the end. With one
(``host:port`` of a running cluster's head, or ``auto``), the driver joins
that cluster; every node then needs what a local run needs (README,
"Transfer sweeps on a Ray cluster").
"""
import os
import uuid
from typing import List, Optional

from benchmarks.transfer_lib import distributed
from benchmarks.transfer_lib.plan import RunConfig

#: Object store of a private instance: results are a few hundred bytes each.
_PRIVATE_OBJECT_STORE_BYTES = 256 << 20

INSTALL_HINT = ("--executor=ray needs the ray package: pip install -r "
                "requirements-ray.txt (or pip install -e '.[ray]').")


def _import_ray():
  # Imported here: the local executor must not need Ray, and Ray reads
  # RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER when it is imported.
  try:
    import ray  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise RuntimeError(INSTALL_HINT) from e
  return ray


def connect(address: Optional[str] = None, num_cpus: Optional[int] = None):
  """Joins the cluster at ``address``, or starts a private one.

  Returns:
    ``(ray, owned)``: the module, and whether this call started the Ray
    instance (and so must stop it).
  """
  if address is None and not os.environ.get("RAY_ADDRESS"):
    # A private instance serves this process only: with clusters disabled,
    # Ray binds its services to 127.0.0.1 instead of the machine's address.
    # It reports no usage statistics (it would try to reach a web service).
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray = _import_ray()
    if ray.is_initialized():
      return ray, False
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False,
             object_store_memory=_PRIVATE_OBJECT_STORE_BYTES,
             log_to_driver=False)
    return ray, True
  if num_cpus is not None:
    raise ValueError("num_cpus applies to a private Ray instance only; a "
                     "cluster's CPUs are set where its nodes are started "
                     "(ray start --num-cpus).")
  ray = _import_ray()
  if ray.is_initialized():
    return ray, False
  # Worker output stays in the cluster's logs: streamed to this terminal it
  # would interleave with the progress display.
  ray.init(address=address, log_to_driver=False)
  return ray, True


class RayBackend:
  """Runs ``distributed.run_task`` as Ray tasks (see the module docstring).

  Args:
    factory: makes the per-run function on each worker.
    measure_arena: passed to ``factory``.
    address: the cluster to join (``None``: ``RAY_ADDRESS`` if set, else a
      private instance on this machine).
    num_cpus: CPUs of a private instance (``None``: all of this machine's).
  """

  def __init__(self, factory: distributed.RunFnFactory, measure_arena: bool,
               address: Optional[str] = None, num_cpus: Optional[int] = None):
    self._ray, self._owned = connect(address, num_cpus)
    self._task = self._ray.remote(num_cpus=1, max_retries=0)(
        distributed.run_task)
    self._factory = factory
    self._measure_arena = measure_arena
    self._token = uuid.uuid4().hex
    self._arena_ref, self._arena_count = None, -1
    exceptions = self._ray.exceptions
    # A worker process or node that died, or was killed by Ray's memory
    # monitor, takes its task with it: run it again. The driver's own raylet
    # dying ends the sweep (nothing would run).
    self._lost = (exceptions.WorkerCrashedError, exceptions.NodeDiedError,
                  exceptions.OutOfMemoryError, exceptions.ObjectLostError)

  def capacity(self) -> int:
    return int(self._ray.cluster_resources().get("CPU", 0))

  def submit(self, config: RunConfig, arena_records: List[dict]):
    # The arena cache only grows: put it in the object store once per size.
    if len(arena_records) != self._arena_count:
      self._arena_ref = self._ray.put(list(arena_records))
      self._arena_count = len(arena_records)
    return self._task.remote(self._token, self._factory, self._measure_arena,
                             config.to_dict(), self._arena_ref)

  def wait(self, handles: list, timeout_s: float) -> list:
    ready, rest = self._ray.wait(handles, num_returns=1, timeout=timeout_s)
    if ready and rest:
      more, _ = self._ray.wait(rest, num_returns=len(rest), timeout=0)
      ready += more
    return ready

  def result(self, handle) -> dict:
    exceptions = self._ray.exceptions
    try:
      return self._ray.get(handle)
    except exceptions.RayTaskError as e:
      cause = e.cause if isinstance(e.cause, BaseException) else e
      details = str(e).strip().splitlines()
      raise distributed.RunFailed(
          f"{type(cause).__name__}: {cause}",
          "\n".join(details[-6:])) from e
    except self._lost as e:
      raise distributed.RunLost(
          f"{type(e).__name__} ({_first_line(e)})") from e
    except exceptions.RayError as e:
      raise distributed.RunFailed(f"{type(e).__name__}: {_first_line(e)}"
                                  ) from e

  def cancel(self, handles: list) -> None:
    for handle in handles:
      self._ray.cancel(handle, force=True)

  def close(self) -> None:
    if self._owned:
      self._ray.shutdown()
      self._owned = False


def _first_line(error: BaseException) -> str:
  text = str(error).strip()
  return text.splitlines()[0] if text else "no message"


def run_sweep(configs, store, factory: distributed.RunFnFactory, *,
              measure_arena: bool, arena_store=None,
              address: Optional[str] = None, num_cpus: Optional[int] = None,
              **kwargs):
  """``distributed.run_distributed_sweep`` on Ray; connects and, for a
  private instance, shuts down around it. ``kwargs`` go to the sweep."""
  backend = RayBackend(factory, measure_arena, address=address,
                       num_cpus=num_cpus)
  try:
    return distributed.run_distributed_sweep(
        configs, store, backend, arena_store=arena_store, **kwargs)
  finally:
    backend.close()
