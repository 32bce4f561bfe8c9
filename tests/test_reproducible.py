"""The same seed gives bit-identical training whatever is watching: a progress bar on or off, a bar that calls
iter() on the loader twice per epoch (as tqdm's auto bar may), logging callbacks, one or two threads."""
import numpy as np

import minibnn
from minibnn import manual_seed, training
from minibnn.data import ArrayDataset, DataLoader, load_digits
from minibnn.nn import BatchNorm1d, BinaryLinear, CrossEntropyLoss, Hardtanh, Linear, Sequential
from minibnn.optim import Adam


class LoaderIteratedTwice:
    """A watcher that, like some progress bars, calls iter() on the loader and drops it before the real pass."""

    def __init__(self, loader):
        self.loader = loader

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        iter(self.loader)              # made and dropped: must not use up the epoch's order
        return iter(self.loader)


def train(progress, wrap=None, threads=None, callbacks=()):
    manual_seed(0)
    x, y = load_digits("train", flatten=True)
    model = Sequential(Linear(64, 64), BatchNorm1d(64), BinaryLinear(64, 64), BatchNorm1d(64), Hardtanh(),
                       Linear(64, 10))
    loader = DataLoader(ArrayDataset(x[:512], y[:512]), batch_size=32, shuffle=True, seed=3)
    run = lambda: training.fit(model, wrap(loader) if wrap else loader, CrossEntropyLoss(),  # noqa: E731
                               Adam(model.parameters(), lr=1e-3), epochs=3, progress=progress, verbose=False,
                               callbacks=callbacks)
    if threads is None:
        history = run()
    else:
        with minibnn.num_threads(threads):
            history = run()
    return [p.data.copy() for p in model.parameters()], history


def same(a, b):
    (wa, ha), (wb, hb) = a, b
    assert len(wa) == len(wb) and all(np.array_equal(u, v) for u, v in zip(wa, wb))
    da, db = ha.to_dict(), hb.to_dict()
    del da["time"], db["time"]                 # wall time is the one thing that may differ
    assert da == db


def test_training_does_not_depend_on_how_it_is_watched():
    reference = train(progress=False)
    same(reference, train(progress=True))
    same(reference, train(progress=True, wrap=LoaderIteratedTwice))
    same(reference, train(progress=False, wrap=LoaderIteratedTwice))
    same(reference, train(progress=False, callbacks=[lambda *args, **kwargs: None]))
    same(reference, train(progress=False, threads=1))
    same(reference, train(progress=False, threads=2))


def test_a_float_mlp_and_a_cnn_train_to_the_same_bits_on_one_and_two_threads():
    """Shapes where a threaded BLAS rounds differently (OpenBLAS: a 100x784 @ 784x256 product): one BLAS thread
    whatever the kernels' count keeps the bits; a binary CNN's kernels and float convolutions keep them too."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((100, 784)).astype(np.float32), rng.integers(0, 10, 100)
    images = rng.standard_normal((8, 3, 32, 32)).astype(np.float32)   # conv2: 75M MACs, above the threads' bar

    def fit(threads):
        manual_seed(0)
        mlp = Sequential(Linear(784, 256), BatchNorm1d(256), Hardtanh(), Linear(256, 10))
        cnn = minibnn.models.vgg_small(3, 10, 32, width=0.5, fc_units=(64,))
        out = []
        with minibnn.num_threads(threads):
            for model, data in ((mlp, x), (cnn, images)):
                optimizer = Adam(model.parameters(), lr=1e-3)
                for _ in range(3):
                    loss = CrossEntropyLoss()(model(minibnn.Tensor(data)), y[:len(data)])
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                out += [p.data.copy() for p in model.parameters()]
        return out

    one, two = fit(1), fit(2)
    assert len(one) == len(two) and all(np.array_equal(a, b) for a, b in zip(one, two))
