"""The exported serial App, built for the host against TFLM from $TFLM_ROOT
with an arena of exactly kArenaBytes, driven through its protocol: predict
held-out images, add labelled samples, train, predict again, save, train on,
restore, restart. Both kernel flavors of `tiny` (16 px, TinyTL-L+B); the
samples in RAM, and in the storage file's sample area (flash mode: the file
acts as NOR flash, erase before write, 4-byte program units)."""
import numpy as np
import pytest

import firmware_fixtures as ff
import tflite_tl as tl
from tflite_tl.firmware import host_app
from tflite_tl.firmware import persistence

RESOLUTION = 16
SAMPLES_PER_CLASS = 4
HELD_OUT_PER_CLASS = 10
EPOCHS = 12


@pytest.fixture(scope="module")
def data():
  ds = tl.load_dataset("animal_mnist", resolution=RESOLUTION, channels=1,
                       seed=0)
  x, y = np.asarray(ds.x_test, np.float32), np.asarray(ds.y_test)
  rng = np.random.default_rng(0)
  train, held = [], []
  for c in range(ff.NUM_CLASSES):
    idx = rng.permutation(np.flatnonzero(y == c))
    train += list(idx[:SAMPLES_PER_CLASS])
    held += list(idx[SAMPLES_PER_CLASS:SAMPLES_PER_CLASS + HELD_OUT_PER_CLASS])
  train = rng.permutation(train)
  return x[train], y[train], x[held], y[held]


def _session_checks(spec, exe, storage, data):
  x_train, y_train, x_held, y_held = data
  with host_app.AppSession(exe, storage) as app:
    where = "in flash" if spec.samples_in_flash else "in RAM"
    assert where in app.summary()[1]
    before = host_app.accuracy(app, x_held, y_held)
    for image, label in zip(x_train, y_train):
      n = app.add_sample(image, label)
    assert n == len(x_train) <= spec.max_samples
    losses = app.train(EPOCHS)
    after = host_app.accuracy(app, x_held, y_held)
    probe = [app.predict(x) for x in x_held[:8]]
    seq = app.save()
    app.train(2)
    moved = [app.predict(x) for x in x_held[:8]]
    assert app.restore() == seq
    restored = [app.predict(x) for x in x_held[:8]]
  with host_app.AppSession(exe, storage) as app:  # a reset of the board
    assert f"restored seq={seq}" in app.banner
    if spec.samples_in_flash:  # the samples survive it too
      assert f"samples in flash: {len(x_train)}" in app.banner
    rebooted = [app.predict(x) for x in x_held[:8]]
  return before, after, losses, probe, moved, restored, rebooted


# CI runs the kernel flavor (the export's choice with TFLM_ROOT); the
# builtin flavor's App is the same code with other ops (-m slow).
@pytest.mark.parametrize("kernels,precision,samples", [
    pytest.param("builtin", "float", "ram", marks=pytest.mark.slow),
    ("tl", "float", "ram"), ("tl", "float", "flash"),
    pytest.param("tl", "int8", "ram", marks=pytest.mark.slow),
    pytest.param("tl", "int8", "flash", marks=pytest.mark.slow)])
def test_app_trains_saves_and_restores(tflm_root, tmp_path, data, kernels,
                                       precision, samples):
  del tflm_root
  spec = ff.tiny_case(kernels, precision, resolution=RESOLUTION,
                      max_samples=ff.NUM_CLASSES * SAMPLES_PER_CLASS,
                      sample_storage=samples).spec
  src = ff.library_dir(spec, tmp_path / "export")
  exe = host_app.build_host_app(src, tmp_path / "tl_host_app")
  storage = tmp_path / "flash.bin"
  before, after, losses, probe, moved, restored, rebooted = _session_checks(
      spec, exe, storage, data)
  print(f"{kernels}/{precision}, samples in {samples}: held-out accuracy "
        f"{before:.3f} -> "
        f"{after:.3f}, loss {losses[0]:.4f} -> {losses[-1]:.4f}, arena "
        f"{spec.arena_bytes} B")
  assert losses[-1] < losses[0]
  assert after > before
  assert moved != probe  # training on after the save changed something
  assert restored == probe and rebooted == probe
  slot = -(-spec.storage_slot_bytes // 4096) * 4096
  seq, schema, payload = persistence.decode_image(storage.read_bytes(), slot)
  assert schema == spec.schema_id and len(payload) == spec.parameter_bytes
  assert seq >= 1


def test_an_arena_below_kArenaBytes_is_refused(tflm_root, tmp_path):
  """The App checks the arena it is given against the ModelSpec."""
  del tflm_root
  spec = ff.tiny_case("tl", "float", resolution=RESOLUTION,
                      max_samples=ff.NUM_CLASSES * SAMPLES_PER_CLASS).spec
  src = ff.library_dir(spec, tmp_path / "export")
  main = tmp_path / "small_arena.cc"
  main.write_text(host_app.HOST_MAIN.read_text().replace(
      "g_arena, sizeof(g_arena)", "g_arena, sizeof(g_arena) - 16"))
  exe = host_app.build_host_app(src, tmp_path / "small", main=main)
  with pytest.raises(host_app.AppError, match="trainer setup failed"):
    host_app.AppSession(exe, tmp_path / "flash.bin")


def test_app_skips_and_reports_a_non_finite_loss(tflm_root, tmp_path, data):
  # A learning rate far too large: the first step's update is finite but
  # so large that every later forward pass overflows. The board's own
  # train step skips those updates (nothing replays anything here), the
  # App says so, and the parameters it saves stay finite.
  del tflm_root
  x_train, y_train, x_held, _ = data
  spec = ff.tiny_case("tl", "float", resolution=RESOLUTION,
                      max_samples=ff.NUM_CLASSES * SAMPLES_PER_CLASS,
                      learning_rate=1e30).spec
  src = ff.library_dir(spec, tmp_path / "export")
  exe = host_app.build_host_app(src, tmp_path / "tl_host_app")
  storage = tmp_path / "flash.bin"
  with host_app.AppSession(exe, storage) as app:
    for image, label in zip(x_train, y_train):
      app.add_sample(image, label)
    app.train(2)
    steps = 2 * -(-len(x_train) // spec.batch_size)
    assert 0 < app.skipped_steps < steps
    app.predict(x_held[0])  # still answers
    app.save()
  slot = -(-spec.storage_slot_bytes // 4096) * 4096
  _, _, payload = persistence.decode_image(storage.read_bytes(), slot)
  values = np.frombuffer(payload, np.float32)
  assert values.size and np.isfinite(values).all()
