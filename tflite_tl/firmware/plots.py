"""Figures shipped in an export, as PNG bytes.

Deterministic: the Agg backend, a fixed size and DPI, and no PNG metadata
(matplotlib would otherwise stamp its version and the date), so the same
figures give the same bytes and re-exports stay byte-identical.
"""
import io
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display, deterministic output
from matplotlib import pyplot as plt  # noqa: E402
from matplotlib import ticker  # noqa: E402

PNG_METADATA = {"Software": None}


def device_loss_curve(epoch_losses: Sequence[float], *, samples: int,
                      batch: int, accuracy_before: float,
                      accuracy_after: float, held_out: int,
                      title: str) -> bytes:
  """Mean train-step loss per epoch of the on-device check (TFLM)."""
  fig, ax = plt.subplots(figsize=(5.0, 3.4), dpi=100)
  try:
    epochs = list(range(1, len(epoch_losses) + 1))
    ax.plot(epochs, list(epoch_losses), marker="o", color="tab:blue",
            label=f"train.tflite in TFLM, {samples} samples, batch {batch}")
    ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    ax.set_xlabel("epoch (T<epochs> on the board)")
    ax.set_ylabel("mean loss")
    ax.set_title(title, fontsize=10)
    ax.grid(True, linewidth=0.3, alpha=0.5)
    ax.text(0.98, 0.95,
            f"held-out accuracy ({held_out} images, predict model)\n"
            f"before {accuracy_before:.1%}, after {accuracy_after:.1%}",
            transform=ax.transAxes, ha="right", va="top", fontsize=8)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata=PNG_METADATA)
    return buffer.getvalue()
  finally:
    plt.close(fig)
