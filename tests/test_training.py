"""fit / evaluate / History: reproducibility, NaN detection, callbacks, hooks, and learning MNIST-format data."""
from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

import minibnn
from minibnn import Sequential, is_grad_enabled
from minibnn.checkpoint import load_checkpoint
from minibnn.data import ArrayDataset, DataLoader, load_mnist, make_blobs
from minibnn.layers import BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU
from minibnn.losses import CrossEntropyLoss, MSELoss
from minibnn.module import Module
from minibnn.optim import SGD, Adam
from minibnn.schedulers import StepLR
from minibnn.training import History, SaveCheckpoint, evaluate, fit


def blobs(n=240, seed=0):
    x, y = make_blobs(n, centers=3, dim=5, std=1.0, seed=seed)
    return x.astype(np.float32), y


def mlp(seed, dropout=0.0):
    minibnn.manual_seed(seed)
    layers = [Linear(5, 16), BatchNorm1d(16), ReLU()]
    if dropout:
        layers.append(Dropout(dropout))
    return Sequential(*layers, Linear(16, 3))


def run(seed, epochs=3, dropout=0.3, **kwargs):
    x, y = blobs()
    model = mlp(seed, dropout)
    train = DataLoader(ArrayDataset(x[:200], y[:200]), batch_size=32, shuffle=True, seed=seed)
    val = DataLoader(ArrayDataset(x[200:], y[200:]), batch_size=64)
    opt = Adam(model.parameters(), lr=0.02)
    history = fit(model, train, CrossEntropyLoss(), opt, epochs, val_loader=val, progress=False, verbose=False,
                  seed=seed, **kwargs)
    return model, opt, history


def without_time(history):
    d = history.to_dict()
    del d["time"]
    return d


# ------------------------------------------------------------------------------------------------------------
# fit basics
# ------------------------------------------------------------------------------------------------------------
def test_same_seed_gives_bit_identical_weights_and_history():
    model_a, _, hist_a = run(seed=3)
    model_b, _, hist_b = run(seed=3)
    model_c, _, hist_c = run(seed=4)
    for (name, a), b in zip(model_a.state_dict().items(), model_b.state_dict().values()):
        assert a.tobytes() == b.tobytes(), name
    assert without_time(hist_a) == without_time(hist_b)
    assert without_time(hist_a) != without_time(hist_c)
    assert not np.array_equal(model_a[0].weight.data, model_c[0].weight.data)


def test_history_records_every_epoch():
    model, opt, history = run(seed=0, epochs=4, dropout=0.0)
    assert len(history) == 4 and history.epoch == [1, 2, 3, 4]
    assert all(isinstance(v, float) for v in history.train_loss + history.val_loss + history.time)
    assert history.train_loss[-1] < history.train_loss[0]
    assert history.val_acc[-1] > 0.9 and history.train_acc[-1] > 0.9
    assert history.extra_loss == [None] * 4 and history.lr == [[0.02]] * 4
    assert model.training  # fit leaves the model in training mode
    restored = History.from_dict(history.to_dict())
    assert restored.to_dict() == history.to_dict()
    assert "4 epochs" in repr(history)


def test_history_numbers_match_evaluate():
    model, _, history = run(seed=1, epochs=2, dropout=0.0)
    x, y = blobs()
    loss, acc = evaluate(model, DataLoader(ArrayDataset(x[200:], y[200:]), batch_size=7), CrossEntropyLoss())
    assert loss == pytest.approx(history.val_loss[-1], rel=1e-5)
    assert acc == history.val_acc[-1]


def test_scheduler_is_stepped_per_epoch_and_lr_recorded():
    x, y = blobs()
    model = mlp(0)
    opt = SGD([{"params": model[0].parameters()}, {"params": model[1].parameters() + model[3].parameters(),
                                                    "lr": 0.2}], lr=0.1, momentum=0.9)
    history = fit(model, [(x, y)], CrossEntropyLoss(), opt, 3, scheduler=StepLR(opt, 1, gamma=0.5),
                  progress=False, verbose=False)
    np.testing.assert_allclose(history.lr, [[0.1, 0.2], [0.05, 0.1], [0.025, 0.05]])
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0125)


def test_nan_loss_raises_naming_epoch_and_batch():
    x, y = blobs(96)
    bad = x.copy()
    bad[70, 2] = np.nan

    class Loader:
        def __init__(self):
            self.epoch = 0

        def __len__(self):
            return 3

        def __iter__(self):
            self.epoch += 1
            data = bad if self.epoch == 2 else x
            return iter([(data[i:i + 32], y[i:i + 32]) for i in range(0, 96, 32)])

    model = mlp(0, dropout=0.0)
    opt = SGD(model.parameters(), lr=0.1)
    weights = {}

    def remember(epoch, model, **_):
        weights[epoch] = model[0].weight.data.copy()

    with pytest.raises(FloatingPointError, match=r"epoch 2/5, batch 3/3"):
        fit(model, Loader(), CrossEntropyLoss(), opt, 5, callbacks=[remember], progress=False, verbose=False)
    assert list(weights) == [1]
    assert np.isfinite(model[0].weight.data).all()  # the bad batch did not update anything


def test_infinite_loss_from_a_diverging_run_is_caught():
    x, y = blobs()
    minibnn.manual_seed(0)
    model = Linear(5, 3)
    with np.errstate(all="ignore"), pytest.raises(FloatingPointError, match="the loss became (inf|nan) in epoch"):
        fit(model, [(x * 1e30, y)], CrossEntropyLoss(), SGD(model.parameters(), lr=1e30), 10, progress=False,
            verbose=False)


def test_extra_loss_hook_is_a_one_liner_regularizer():
    def weight_norm(model):
        return float(sum(np.square(p.data).sum() for p in model.parameters() if p.ndim == 2))

    plain, _, _ = run(seed=0, dropout=0.0)
    l2 = lambda m: 0.05 * sum((p * p).sum() for p in m.parameters() if p.ndim == 2)  # noqa: E731
    regularized, _, history = run(seed=0, dropout=0.0, extra_loss=l2)
    assert weight_norm(regularized) < 0.7 * weight_norm(plain)
    assert all(v > 0 for v in history.extra_loss)


def test_metrics_are_averaged_for_train_and_val():
    def error_rate(out, y):
        return float(np.mean(out.argmax(axis=1) != y))

    _, _, history = run(seed=0, dropout=0.0, metrics={"error": error_rate})
    np.testing.assert_allclose(history.metrics["train_error"], 1 - np.array(history.train_acc), atol=1e-12)
    np.testing.assert_allclose(history.metrics["val_error"], 1 - np.array(history.val_acc), atol=1e-12)


def test_callbacks_can_stop_and_checkpoint_every_epoch(tmp_path):
    x, y = blobs()
    model = mlp(0)
    opt = Adam(model.parameters(), lr=0.01)
    save = SaveCheckpoint(tmp_path / "run-{epoch:02d}.npz")
    history = fit(model, DataLoader(ArrayDataset(x, y), 50, shuffle=True, seed=0), CrossEntropyLoss(), opt, 10,
                  callbacks=[save, lambda epoch, **_: epoch == 3], progress=False, verbose=False)
    assert len(history) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run-01.npz", "run-02.npz", "run-03.npz"]
    restored = mlp(9)
    opt2 = Adam(restored.parameters(), lr=0.01)
    info = load_checkpoint(tmp_path / "run-03.npz", restored, opt2)
    assert info["epoch"] == 3 and History.from_dict(info["extra"]["history"]).to_dict() == history.to_dict()
    for a, b in zip(model.state_dict().values(), restored.state_dict().values()):
        assert a.tobytes() == b.tobytes()
    # continuing the restored run numbers its epochs on
    more = fit(restored, [(x, y)], CrossEntropyLoss(), opt2, 2, progress=False, verbose=False,
               history=History.from_dict(info["extra"]["history"]))
    assert more.epoch == [1, 2, 3, 4, 5]


def test_progress_bar_and_epoch_lines(capsys):
    x, y = blobs()
    model = mlp(0)
    fit(model, DataLoader(ArrayDataset(x, y), 40), CrossEntropyLoss(), Adam(model.parameters()), 2,
        val_loader=[(x, y)], progress=True)
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("epoch 1/2  train loss") and "val loss" in lines[1]
    assert "acc" in lines[0] and "lr 0.001" in lines[0]
    assert "epoch 2/2" in err and "batch" in err  # the tqdm bar, on stderr


def test_regression_outputs_have_no_accuracy():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 5)).astype(np.float32)
    y = (x @ np.arange(5.0, dtype=np.float32))[:, None]
    minibnn.manual_seed(0)
    model = Linear(5, 1)
    history = fit(model, [(x, y)], MSELoss(), Adam(model.parameters(), lr=0.1), 30, progress=False,
                  verbose=False)
    assert history.train_acc == [None] * 30 and history.train_loss[-1] < 0.5 * history.train_loss[0]
    assert evaluate(model, [(x, y)], MSELoss())[1] is None


def test_evaluate_uses_eval_mode_and_no_graph_and_restores_the_mode():
    seen = []

    class Probe(Module):
        def forward(self, x):
            seen.append((self.training, is_grad_enabled()))
            return x

    probe = Probe()
    loss, acc = evaluate(probe, [(np.array([[2.0, 0.0], [0.0, 1.0]]), np.array([0, 0]))], CrossEntropyLoss())
    assert seen == [(False, False)] and probe.training and acc == 0.5
    probe.eval()
    evaluate(probe, [(np.zeros((1, 2)), np.array([1]))], CrossEntropyLoss())
    assert not probe.training
    with pytest.raises(ValueError, match="no batches"):
        evaluate(probe, [], CrossEntropyLoss())


def test_fit_argument_errors():
    model = mlp(0)
    opt = SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="fit: epochs must be an int >= 0, got -1"):
        fit(model, [], CrossEntropyLoss(), opt, -1)
    with pytest.raises(ValueError, match="no batches in epoch 1"):
        fit(model, [], CrossEntropyLoss(), opt, 1, progress=False)
    with pytest.raises(TypeError, match="minibnn Module"):
        fit(lambda x: x, [], CrossEntropyLoss(), opt, 1)
    with pytest.raises(ValueError, match="SaveCheckpoint: every must be an int >= 1, got 0"):
        SaveCheckpoint("x.npz", every=0)


# ------------------------------------------------------------------------------------------------------------
# Learning MNIST-format data read through the IDX reader
# ------------------------------------------------------------------------------------------------------------
def write_idx(path, array, compress=False):
    """An IDX file of unsigned bytes: magic 0x00 0x00 0x08 ndim, the sizes as big-endian uint32, the values."""
    blob = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", n) for n in array.shape)
    blob += np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.write_bytes(gzip.compress(blob) if compress else blob)


def synthetic_digits(n, seed):
    """28x28 uint8 images of 10 classes: each class is a fixed pattern of three strokes, drawn shifted by up to
    2 pixels, with random intensity and noise. Learnable, but not linearly trivial after the shifts."""
    templates = np.zeros((10, 28, 28))
    shapes = np.random.default_rng(1234)
    for k in range(10):
        for _ in range(3):
            (r0, c0), (r1, c1) = shapes.integers(6, 22, size=(2, 2))
            for t in np.linspace(0, 1, 40):
                r, c = int(round(r0 + t * (r1 - r0))), int(round(c0 + t * (c1 - c0)))
                templates[k, r - 1:r + 2, c - 1:c + 2] = 1.0
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n)
    images = np.empty((n, 28, 28))
    for i, k in enumerate(labels):
        shifted = np.roll(templates[k], tuple(rng.integers(-2, 3, size=2)), axis=(0, 1))
        images[i] = rng.uniform(150, 255) * shifted + rng.uniform(0, 60, size=(28, 28))
    return np.clip(images, 0, 255).astype(np.uint8), labels.astype(np.uint8)


@pytest.fixture(scope="module")
def mnist_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    folder = root / "mnist"
    folder.mkdir()
    for prefix, n, seed in (("train", 1000, 0), ("t10k", 300, 1)):
        images, labels = synthetic_digits(n, seed)
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images, compress=True)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels)
    return root


def test_mlp_learns_mnist_format_data(mnist_root):
    x_train, y_train = load_mnist(mnist_root, "train", flatten=True)
    x_test, y_test = load_mnist(mnist_root, "test", flatten=True)
    assert x_train.shape == (1000, 784) and x_train.dtype == np.float32 and y_train.dtype == np.int64
    minibnn.manual_seed(0)
    model = Sequential(Linear(784, 64), BatchNorm1d(64), ReLU(), Linear(64, 10))
    train = DataLoader(ArrayDataset(x_train, y_train), batch_size=50, shuffle=True, seed=0)
    history = fit(model, train, CrossEntropyLoss(), Adam(model.parameters(), lr=3e-3), 4,
                  val_loader=DataLoader(ArrayDataset(x_test, y_test), batch_size=100), progress=False,
                  verbose=False)
    assert history.val_acc[-1] > 0.8  # chance is 0.1


def test_cnn_learns_mnist_format_data(mnist_root):
    x_train, y_train = load_mnist(mnist_root, "train")
    x_test, y_test = load_mnist(mnist_root, "test")
    x_train, x_test = x_train[:, None], x_test[:, None]  # (N, 1, 28, 28)
    minibnn.manual_seed(0)
    model = Sequential(Conv2d(1, 8, 5, stride=2), BatchNorm2d(8), ReLU(), MaxPool2d(2), Flatten(),
                       Linear(8 * 6 * 6, 10))
    train = DataLoader(ArrayDataset(x_train, y_train), batch_size=50, shuffle=True, seed=0)
    history = fit(model, train, CrossEntropyLoss(), Adam(model.parameters(), lr=3e-3), 3,
                  val_loader=DataLoader(ArrayDataset(x_test, y_test), batch_size=100), progress=False,
                  verbose=False)
    assert history.val_acc[-1] > 0.8
