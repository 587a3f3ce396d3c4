"""A cheap stand-in for the real per-run function, for sweep and report tests.

Its numbers follow the shape TinyTL reports (memory falls from FT-Full to the
TinyTL variants) and depend only on the configuration, so tests can check
what the reports say.
"""
import hashlib
import os
import time

# (accuracy, training memory in bytes) per method, before per-seed noise.
_BASE = {
    "ft_full": (0.90, 400_000), "ft_last": (0.70, 30_000),
    "ft_norm_last": (0.80, 190_000), "tinytl_b": (0.82, 32_000),
    "tinytl_l": (0.86, 37_000), "tinytl_lb": (0.89, 38_000),
    "sparse_update": (0.84, 34_000), "tinytrain": (0.88, 31_000),
}
# TinyTrain's accuracy offset per channel criterion.
_CRITERION = {"fisher": 0.0, "l2": -0.02, "random": -0.05}


def _noise(config) -> float:
  digest = hashlib.sha256(config.run_id.encode()).digest()
  return (digest[0] / 255.0 - 0.5) * 0.02


def fake_run(config, sleep_s: float = 0.0) -> dict:
  if sleep_s:
    time.sleep(sleep_s)
  acc, mem = _BASE[config.method]
  options = dict(config.method_options)
  extra = {}
  if config.method == "tinytrain":
    budget = options.get("memory_budget", 32_768)
    acc += _CRITERION[options.get("criterion", "fisher")] + budget / 1e7
    mem += budget // 8
    extra = {"selection_modelled_bytes": budget - 100, "rewrite_time_s": 0.5}
  mem = mem * config.batch_size // 8
  if config.resolution is not None:
    mem = mem * config.resolution ** 2 // 32 ** 2
  return {"accuracy": acc + _noise(config), "training_memory_bytes": mem,
          "arena_bytes": int(mem * 1.3), "trainable_params": mem // 40,
          "wall_time_s": 1.0, **extra}


def fake_factory(results_path, measure_arena):
  """A ``run_fn_factory`` (``cli.run``, the Ray executor) making ``fake_run``."""
  del results_path, measure_arena
  return fake_run


class Hybrid:
  """A ``run_fn_factory``: the real runner for ``real_methods``, ``fake_run``
  for the others, so that a test has real runs at the cost of a few.

  With ``victim`` (a run id) and ``marker_dir``, the victim's first attempt
  writes ``<marker_dir>/<run id>.pid`` (its process id) and then blocks, so
  that a test can kill the worker process running it at a known point; a
  later attempt (the marker exists) runs normally. The run ``failing``
  raises a ValueError, as an unsupported model would.
  """

  def __init__(self, real_methods=(), victim=None, marker_dir=None,
               block_s=600.0, fake_sleep_s=0.0, failing=None):
    self.real_methods = tuple(real_methods)
    self.failing = failing
    self.victim, self.marker_dir, self.block_s = victim, marker_dir, block_s
    self.fake_sleep_s = fake_sleep_s

  def __call__(self, results_path, measure_arena):
    real = None
    if self.real_methods:
      from benchmarks.transfer_lib import distributed  # pylint: disable=import-outside-toplevel
      real = distributed.transfer_runner(results_path, measure_arena)

    def run(config):
      if config.run_id == self.failing:
        raise ValueError(f"no lowering for {config.method} (test failure)")
      if config.run_id == self.victim:
        marker = os.path.join(self.marker_dir, f"{config.run_id}.pid")
        if not os.path.exists(marker):
          with open(marker + ".tmp", "w") as f:
            f.write(str(os.getpid()))
          os.replace(marker + ".tmp", marker)
          time.sleep(self.block_s)  # Killed here by the test.
          raise RuntimeError(f"{config.describe()} was not killed within "
                             f"{self.block_s} s")
      if config.method in self.real_methods:
        return real(config)
      return fake_run(config, sleep_s=self.fake_sleep_s)

    return run
