"""Shared figure layout of the benchmark plots."""


def place_legend(fig, handles, labels, fontsize: float = 9):
  """A figure legend below the panels that stays inside the figure.

  As many columns as fit the figure's width (one row of six methods is wider
  than a one- or two-panel figure), and the panels shrink to leave the
  legend's measured height free at the bottom.
  """
  ncol = len(labels)
  while True:
    legend = fig.legend(handles, labels, loc="lower center", ncol=ncol,
                        frameon=False, fontsize=fontsize,
                        bbox_to_anchor=(0.5, 0.0))
    fig.canvas.draw()
    box = legend.get_window_extent()
    if box.width <= 0.98 * fig.bbox.width or ncol == 1:
      break
    legend.remove()
    ncol = max(1, ncol - 1)
  margin = 6 / fig.bbox.height  # a few pixels between legend and axes
  fig.tight_layout(rect=(0, box.height / fig.bbox.height + margin, 1, 1))
  return legend
