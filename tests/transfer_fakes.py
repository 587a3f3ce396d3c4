"""A cheap stand-in for the real per-run function, for sweep and report tests.

Its numbers follow the shape TinyTL reports (memory falls from FT-Full to the
TinyTL variants) and depend only on the configuration, so tests can check
what the reports say.
"""
import hashlib
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
