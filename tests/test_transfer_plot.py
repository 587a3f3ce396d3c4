import hashlib

from benchmarks.transfer_lib import aggregate, plan, plot

from transfer_fakes import fake_run


def _groups(resolutions=(None,)):
  configs = plan.grid(backbones=["b"], methods=["ft_full", "ft_last",
                                               "tinytl_lb"],
                      datasets=["lfw", "digits", "mnist"], seeds=[0, 1],
                      shots=[10], resolutions=resolutions)
  return aggregate.group_records(
      dict(fake_run(c), run_id=c.run_id, config=c.to_dict()) for c in configs)


def _digest(path):
  return hashlib.sha256(path.read_bytes()).hexdigest()


def test_plot_is_a_png_with_one_panel_per_dataset_and_deterministic(tmp_path):
  a, b = tmp_path / "a.png", tmp_path / "b.png"
  groups = _groups(resolutions=(24, None))
  assert plot.plot_accuracy_vs_memory(groups, str(a), batch_size=8,
                                      shots=10) == 3
  plot.plot_accuracy_vs_memory(groups, str(b), batch_size=8, shots=10)
  assert a.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  assert _digest(a) == _digest(b)
  assert b"matplotlib" not in a.read_bytes()  # No version stamp.


def test_nothing_to_plot_writes_nothing(tmp_path):
  path = tmp_path / "none.png"
  assert plot.plot_accuracy_vs_memory(_groups(), str(path), batch_size=8,
                                      shots=None) == 0
  assert not path.exists()


def _six_method_groups(datasets):
  configs = plan.grid(backbones=["b"], methods=["ft_full", "ft_last",
                                               "ft_norm_last", "tinytl_b",
                                               "tinytl_l", "tinytl_lb"],
                      datasets=datasets, seeds=[0, 1], shots=[10])
  return aggregate.group_records(
      dict(fake_run(c), run_id=c.run_id, config=c.to_dict()) for c in configs)


def test_legend_sits_inside_the_figure_and_below_the_panels():
  for datasets in (["lfw"], ["lfw", "digits"], ["lfw", "digits", "mnist"]):
    fig = plot.figure_accuracy_vs_memory(_six_method_groups(datasets),
                                         batch_size=8, shots=10)
    try:
      fig.canvas.draw()
      legend = fig.legends[0].get_window_extent()
      frame = fig.bbox
      assert frame.x0 <= legend.x0 and legend.x1 <= frame.x1, datasets
      assert frame.y0 <= legend.y0 and legend.y1 <= frame.y1, datasets
      for ax in fig.axes:
        # Axis labels and ticks included: nothing overlaps the legend.
        assert ax.get_tightbbox().y0 >= legend.y1 - 1, datasets
      assert len(fig.legends[0].get_texts()) == 6
    finally:
      plot.plt.close(fig)
