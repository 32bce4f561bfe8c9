"""History.plot(): loss and accuracy curves of a real fit, returned as a figure (training and validation)."""
import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib", reason="History.plot needs matplotlib (the [course] extra)")
matplotlib.use("Agg")

import minibnn  # noqa: E402
from minibnn.data import ArrayDataset, DataLoader, make_blobs  # noqa: E402
from minibnn.layers import Linear  # noqa: E402
from minibnn.losses import CrossEntropyLoss  # noqa: E402
from minibnn.optim import Adam  # noqa: E402
from minibnn.training import History, fit  # noqa: E402


def test_history_plot_draws_every_recorded_curve(tmp_path):
    x, y = make_blobs(60, centers=3, dim=4, seed=0)
    minibnn.manual_seed(0)
    model = Linear(4, 3)
    loader = DataLoader(ArrayDataset(x, y), batch_size=20)
    history = fit(model, loader, CrossEntropyLoss(), Adam(model.parameters(), lr=0.05), epochs=3,
                  val_loader=loader, progress=False)
    fig = history.plot(title="blobs")
    loss_ax, acc_ax = fig.axes
    assert [line.get_label() for line in loss_ax.lines] == ["train", "val"]
    np.testing.assert_allclose(loss_ax.lines[0].get_ydata(), history.train_loss)
    np.testing.assert_allclose(acc_ax.lines[1].get_ydata(), history.val_acc)
    assert list(loss_ax.lines[0].get_xdata()) == [1, 2, 3]
    fig.savefig(tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_history_plot_leaves_out_missing_curves():
    h = History()
    h.append(epoch=1, train_loss=0.7, train_acc=None, val_loss=None, val_acc=None, extra_loss=None, lr=[0.1],
             time=0.0)
    loss_ax, acc_ax = h.plot().axes
    assert len(loss_ax.lines) == 1 and len(acc_ax.lines) == 0
