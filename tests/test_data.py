"""Tests for the minibnn.data package: datasets, DataLoader, the bundled digits, IDX / CIFAR-10 readers, synthetic sets.

No test touches the network: MNIST-style and CIFAR-style files are written here, by writers independent of
the readers under test, and downloads are exercised with a fake ``urllib.request.urlopen``.
"""
from __future__ import annotations

import ast
import gzip
import hashlib
import io
import os
import struct
import tarfile
import urllib.error
import urllib.request

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minibnn.data as data
from minibnn.data import digits, readers
from minibnn.data import (ArrayDataset, DataLoader, Dataset, DownloadError, Subset, load_cifar10, load_digits,
                          load_mnist, make_blobs, make_gaussian_points, make_spirals, random_split,
                          read_cifar10_batch, read_idx, stratified_split)

FAST = settings(deadline=None, max_examples=30)


# ------------------------------------------------------------------------------------------------------------
# Independent writers for the two file formats
# ------------------------------------------------------------------------------------------------------------

IDX_CODES = {"u1": 0x08, "i1": 0x09, "i2": 0x0B, "i4": 0x0C, "f4": 0x0D, "f8": 0x0E}


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode `array` as IDX, following the format description (magic, big-endian uint32 sizes, data)."""
    kind = array.dtype.kind + str(array.dtype.itemsize)
    header = bytes([0, 0, IDX_CODES[kind], array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write(path, blob: bytes, gz: bool = False) -> str:
    with open(path, "wb") as f:
        f.write(gzip.compress(blob) if gz else blob)
    return str(path)


def cifar_bytes(images: np.ndarray, labels: np.ndarray) -> bytes:
    """CIFAR-10 binary records: per image one label byte then 3072 pixel bytes, R plane, G plane, B plane."""
    out = bytearray()
    for image, label in zip(images, labels):
        out.append(int(label))
        for channel in range(3):
            for row in range(32):
                out.extend(int(v) for v in image[channel, row])
    return bytes(out)


def random_images(rng, n, shape, high=256):
    return rng.integers(0, high, size=(n,) + shape, dtype=np.uint8)


# ------------------------------------------------------------------------------------------------------------
# Dataset, Subset, random_split
# ------------------------------------------------------------------------------------------------------------

def test_array_dataset_indexing_and_length():
    x, y = np.arange(20).reshape(10, 2), np.arange(10) * 7
    ds = ArrayDataset(x, y)
    assert len(ds) == 10
    xi, yi = ds[3]
    np.testing.assert_array_equal(xi, [6, 7])
    assert yi == 21
    xb, yb = ds.get_batch(np.array([9, 0, 9]))
    np.testing.assert_array_equal(xb, x[[9, 0, 9]])
    np.testing.assert_array_equal(yb, y[[9, 0, 9]])


def test_array_dataset_rejects_mismatched_lengths_and_scalars():
    with pytest.raises(ValueError, match=r"same number of samples.*\(5, 3\).*\(4,\)"):
        ArrayDataset(np.zeros((5, 3)), np.zeros(4))
    with pytest.raises(ValueError, match="sample axis"):
        ArrayDataset(np.float64(1.0), np.zeros(1))


def test_base_dataset_requires_subclass_methods():
    with pytest.raises(NotImplementedError, match="__len__"):
        len(Dataset())
    with pytest.raises(NotImplementedError, match="__getitem__"):
        Dataset()[0]


def test_subset_maps_indices_and_checks_range():
    ds = ArrayDataset(np.arange(6) * 10, np.arange(6))
    sub = Subset(ds, [5, 1, 3])
    assert len(sub) == 3
    assert sub[1][0] == 10
    np.testing.assert_array_equal(sub[1:][0], [10, 30])
    np.testing.assert_array_equal(sub.get_batch([2, 0])[1], [3, 5])
    with pytest.raises(IndexError, match="index 6 is out of range for a dataset of 6"):
        Subset(ds, [0, 6])
    with pytest.raises(ValueError, match="1-D array of integers"):
        Subset(ds, [0.5])


@FAST
@given(n=st.integers(0, 60), parts=st.integers(1, 4), seed=st.integers(0, 2**32 - 1), data_=st.data())
def test_random_split_is_a_seeded_partition(n, parts, seed, data_):
    cuts = sorted(data_.draw(st.lists(st.integers(0, n), min_size=parts - 1, max_size=parts - 1)))
    lengths = np.diff([0] + cuts + [n]).tolist()
    ds = ArrayDataset(np.arange(n), np.arange(n))
    subsets = random_split(ds, lengths, seed=seed)
    assert [len(s) for s in subsets] == lengths
    everything = np.concatenate([s.indices for s in subsets])
    np.testing.assert_array_equal(np.sort(everything), np.arange(n))
    again = random_split(ds, lengths, seed=seed)
    for a, b in zip(subsets, again):
        np.testing.assert_array_equal(a.indices, b.indices)


def test_random_split_fractions_and_errors():
    ds = ArrayDataset(np.zeros((11, 2)), np.zeros(11))
    assert [len(s) for s in random_split(ds, [0.5, 0.25, 0.25], seed=0)] == [6, 3, 2]  # floors 5,2,2 + 2 left
    assert not np.array_equal(random_split(ds, [6, 5], seed=0)[0].indices,
                              random_split(ds, [6, 5], seed=1)[0].indices)
    with pytest.raises(ValueError, match=r"sum to len\(dataset\) = 11, got \[5, 5\]"):
        random_split(ds, [5, 5])
    with pytest.raises(ValueError, match="sum to 1"):
        random_split(ds, [0.5, 0.4])
    with pytest.raises(ValueError, match="empty"):
        random_split(ds, [])


# ------------------------------------------------------------------------------------------------------------
# DataLoader
# ------------------------------------------------------------------------------------------------------------

class PerSample(Dataset):
    """A dataset with no batch shortcut: the loader must stack its samples one by one."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return np.array([i, -i], dtype=np.float32), np.int64(3 * i)


class NoPerSampleAccess(ArrayDataset):
    """An ArrayDataset whose single-sample access fails: proves the loader batches by fancy indexing."""

    def __getitem__(self, index):
        raise AssertionError("DataLoader read a single sample from an ArrayDataset")


@FAST
@given(n=st.integers(0, 50), batch_size=st.integers(1, 20), shuffle=st.booleans(), drop_last=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_loader_visits_every_sample_once_per_epoch(n, batch_size, shuffle, drop_last, seed):
    ds = NoPerSampleAccess(np.arange(n), 10 * np.arange(n))
    loader = DataLoader(ds, batch_size, shuffle=shuffle, drop_last=drop_last, seed=seed)
    for _ in range(2):
        batches = list(loader)
        assert len(batches) == len(loader)
        sizes = [len(xb) for xb, _ in batches]
        if drop_last:
            assert sizes == [batch_size] * (n // batch_size)
        else:
            assert sum(sizes) == n and all(s == batch_size for s in sizes[:-1]) and 0 < min(sizes or [1])
        seen = np.concatenate([xb for xb, _ in batches]) if batches else np.empty(0, dtype=np.int64)
        for xb, yb in batches:
            np.testing.assert_array_equal(yb, 10 * xb)  # inputs stay paired with their targets
        assert len(np.unique(seen)) == len(seen)  # no sample twice
        if not drop_last:
            np.testing.assert_array_equal(np.sort(seen), np.arange(n))  # every sample
        if not shuffle:
            np.testing.assert_array_equal(seen, np.arange(len(seen)))  # in order


def test_loader_len_and_drop_last():
    ds = ArrayDataset(np.zeros((10, 3)), np.zeros(10))
    assert len(DataLoader(ds, 4)) == 3
    assert len(DataLoader(ds, 4, drop_last=True)) == 2
    assert len(DataLoader(ds, 11, drop_last=True)) == 0 and list(DataLoader(ds, 11, drop_last=True)) == []
    assert [len(xb) for xb, _ in DataLoader(ds, 4, drop_last=True)] == [4, 4]
    assert [xb.shape for xb, _ in DataLoader(ds, 4)] == [(4, 3), (4, 3), (2, 3)]


def epochs(loader, count):
    return [np.concatenate([xb for xb, _ in loader]) for _ in range(count)]


def test_loader_seeded_shuffle_is_deterministic_and_reshuffles_each_epoch():
    ds = ArrayDataset(np.arange(40), np.arange(40))
    first = epochs(DataLoader(ds, 7, shuffle=True, seed=123), 3)
    second = epochs(DataLoader(ds, 7, shuffle=True, seed=123), 3)
    other = epochs(DataLoader(ds, 7, shuffle=True, seed=124), 3)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)  # same seed, same sequence of epochs
    assert not np.array_equal(first[0], first[1]) and not np.array_equal(first[1], first[2])  # new order each
    assert not np.array_equal(first[0], other[0])
    assert not np.array_equal(first[0], np.arange(40))


def test_loader_epoch_order_does_not_depend_on_how_often_iter_is_called():
    """Issue 9: each epoch's order is a pure function of (seed, epoch). A progress bar that calls iter() twice
    per epoch (and iterates the second iterator) gives the same batches as a plain loop."""
    ds = ArrayDataset(np.arange(50), np.arange(50) % 3)

    def batches(loader, extra_iters):
        seen = []
        for _ in range(3):
            for _ in range(extra_iters):
                iter(loader)                      # made and dropped, as tqdm's auto bar does
            seen.append([xb.tolist() for xb, _ in loader])
        return seen

    once = batches(DataLoader(ds, 8, shuffle=True, seed=5), 0)
    twice = batches(DataLoader(ds, 8, shuffle=True, seed=5), 1)
    thrice = batches(DataLoader(ds, 8, shuffle=True, seed=5), 2)
    assert once == twice == thrice
    assert once[0] != once[1]                     # still a new order each epoch
    loader = DataLoader(ds, 8, shuffle=True, seed=5)
    np.testing.assert_array_equal(loader.order(2), np.concatenate([np.array(b) for b in once[2]]))
    resumed = DataLoader(ds, 8, shuffle=True, seed=5)
    resumed.epoch = 2                             # resume at epoch 2: its order, not epoch 0's
    assert [xb.tolist() for xb, _ in resumed] == once[2]
    with pytest.raises(ValueError, match="DataLoader: seed must be an int >= 0"):
        DataLoader(ds, 8, seed=-1)


def test_loader_per_sample_path_matches_array_path():
    n = 13
    fast = DataLoader(ArrayDataset(np.stack([np.arange(n), -np.arange(n)], 1).astype(np.float32), 3 * np.arange(n)),
                      5, shuffle=True, seed=7)
    slow = DataLoader(PerSample(n), 5, shuffle=True, seed=7)
    for (xf, yf), (xs, ys) in zip(fast, slow):
        np.testing.assert_array_equal(xf, xs)
        np.testing.assert_array_equal(yf, ys)
        assert xs.dtype == np.float32 and xs.shape[1] == 2


def test_loader_over_a_split_subset():
    ds = NoPerSampleAccess(np.arange(30), np.arange(30))
    train, val = random_split(ds, [20, 10], seed=3)
    seen = np.concatenate([xb for xb, _ in DataLoader(val, 4, shuffle=True, seed=0)])
    np.testing.assert_array_equal(np.sort(seen), np.sort(val.indices))


@pytest.mark.parametrize("kwargs, error, pattern", [
    (dict(batch_size=0), ValueError, r"batch_size must be an int >= 1, got 0"),
    (dict(batch_size=-3), ValueError, r"batch_size must be an int >= 1, got -3"),
    (dict(batch_size=2.5), TypeError, r"batch_size must be an int, got 2.5"),
    (dict(batch_size=True), TypeError, r"batch_size must be an int, got the bool"),
    (dict(batch_size=2, shuffle="yes"), TypeError, r"shuffle must be True or False"),
    (dict(batch_size=2, drop_last=1), TypeError, r"drop_last must be True or False"),
])
def test_loader_rejects_bad_arguments(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        DataLoader(ArrayDataset(np.zeros(4), np.zeros(4)), **kwargs)


def test_loader_rejects_non_dataset():
    with pytest.raises(TypeError, match="__len__ and __getitem__"):
        DataLoader(42, 2)


# ------------------------------------------------------------------------------------------------------------
# IDX files
# ------------------------------------------------------------------------------------------------------------

@FAST
@given(kind=st.sampled_from(sorted(IDX_CODES)), shape=st.lists(st.integers(0, 5), min_size=1, max_size=4),
       gz=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_read_idx_round_trip(tmp_path_factory, kind, shape, gz, seed):
    rng = np.random.default_rng(seed)
    dtype = np.dtype(kind)
    if dtype.kind == "f":
        array = (rng.standard_normal(shape) * 1e3).astype(dtype)
    else:
        info = np.iinfo(dtype)
        array = rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
    path = write(tmp_path_factory.mktemp("idx") / ("a.idx.gz" if gz else "a.idx"), idx_bytes(array), gz)
    back = read_idx(path)
    assert back.dtype == dtype and back.dtype.isnative and back.shape == tuple(shape)
    np.testing.assert_array_equal(back, array)
    back[...] = 0  # the result is a writable array, not a view of a read-only buffer


def test_read_idx_known_bytes(tmp_path):
    # int16 values 1 and -2 in big-endian order, shape (2,)
    path = write(tmp_path / "x", bytes([0, 0, 0x0B, 1, 0, 0, 0, 2, 0x00, 0x01, 0xFF, 0xFE]))
    np.testing.assert_array_equal(read_idx(path), np.array([1, -2], dtype=np.int16))


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_truncated_file_names_sizes(tmp_path, gz):
    blob = idx_bytes(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))  # 4 + 12 header bytes + 24 data bytes
    path = write(tmp_path / "t.idx", blob[:-5], gz)
    with pytest.raises(ValueError) as info:
        read_idx(path)
    message = str(info.value)
    assert path in message and "truncated" in message and "40 bytes" in message and "35 bytes" in message
    assert ("decompressed" in message) == gz


def test_read_idx_rejects_trailing_bytes_bad_magic_bad_code_short_header(tmp_path):
    good = idx_bytes(np.arange(4, dtype=np.int32))
    with pytest.raises(ValueError, match="trailing bytes.*should be 24 bytes, but it is 25"):
        read_idx(write(tmp_path / "a", good + b"\0"))
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(write(tmp_path / "b", b"\x01" + good[1:]))
    with pytest.raises(ValueError, match="unknown IDX type code 0x07"):
        read_idx(write(tmp_path / "c", good[:2] + b"\x07" + good[3:]))
    with pytest.raises(ValueError, match="needs 8 header bytes.*is 6 bytes"):
        read_idx(write(tmp_path / "d", good[:6]))
    with pytest.raises(ValueError, match="4-byte magic number.*is 2 bytes"):
        read_idx(write(tmp_path / "e", good[:2]))


def test_read_idx_truncated_gzip_stream(tmp_path):
    compressed = gzip.compress(idx_bytes(np.arange(1000, dtype=np.uint16).astype(np.int16)))
    path = write(tmp_path / "cut.gz", compressed[: len(compressed) // 2])
    with pytest.raises(ValueError, match=r"cut\.gz is a truncated or corrupt gzip file"):
        read_idx(path)


# ------------------------------------------------------------------------------------------------------------
# CIFAR-10 binary batches
# ------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [False, True])
def test_read_cifar10_batch_round_trip(tmp_path, gz):
    rng = np.random.default_rng(0)
    images, labels = random_images(rng, 5, (3, 32, 32)), rng.integers(0, 10, 5).astype(np.uint8)
    path = write(tmp_path / "data_batch_1.bin", cifar_bytes(images, labels), gz)
    got_images, got_labels = read_cifar10_batch(path)
    assert got_images.dtype == np.uint8 and got_images.shape == (5, 3, 32, 32)
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)


def test_read_cifar10_batch_rejects_truncated_empty_and_bad_labels(tmp_path):
    rng = np.random.default_rng(1)
    blob = cifar_bytes(random_images(rng, 2, (3, 32, 32)), [1, 2])
    path = write(tmp_path / "test_batch.bin", blob[:-100])
    with pytest.raises(ValueError) as info:
        read_cifar10_batch(path)
    message = str(info.value)
    assert path in message and "3073-byte records" in message and f"is {2 * 3073 - 100} bytes" in message
    with pytest.raises(ValueError, match="is 0 bytes"):
        read_cifar10_batch(write(tmp_path / "empty.bin", b""))
    bad = bytearray(blob)
    bad[3073] = 10
    with pytest.raises(ValueError, match="record 1 has label 10"):
        read_cifar10_batch(write(tmp_path / "bad.bin", bytes(bad)))


# ------------------------------------------------------------------------------------------------------------
# load_mnist / load_cifar10, with downloads faked
# ------------------------------------------------------------------------------------------------------------

def make_mnist_folder(folder, split, n, rng, gz=True):
    os.makedirs(folder, exist_ok=True)
    prefix = "train" if split == "train" else "t10k"
    images, labels = random_images(rng, n, (28, 28)), rng.integers(0, 10, n).astype(np.uint8)
    suffix = ".gz" if gz else ""
    write(os.path.join(folder, f"{prefix}-images-idx3-ubyte{suffix}"), idx_bytes(images), gz)
    write(os.path.join(folder, f"{prefix}-labels-idx1-ubyte{suffix}"), idx_bytes(labels), gz)
    return images, labels


@pytest.mark.parametrize("kind, folder, gz", [("mnist", "mnist", True), ("fashion", "fashion-mnist", False)])
def test_load_mnist_reads_tiny_files(tmp_path, kind, folder, gz):
    rng = np.random.default_rng(2)
    images, labels = make_mnist_folder(tmp_path / folder, "test", 7, rng, gz)
    x, y = load_mnist(tmp_path, "test", kind=kind)
    assert x.dtype == np.float32 and x.shape == (7, 28, 28) and y.dtype == np.int64
    np.testing.assert_allclose(x, images / np.float32(255), rtol=0, atol=0)
    np.testing.assert_array_equal(y, labels)
    raw, _ = load_mnist(tmp_path, "test", kind=kind, normalize=False, flatten=True)
    assert raw.dtype == np.uint8 and raw.shape == (7, 784)
    np.testing.assert_array_equal(raw, images.reshape(7, -1))


def test_load_mnist_missing_files_say_what_to_put_where(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_mnist(tmp_path, "train", kind="fashion")
    message = str(info.value)
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        assert os.path.join(str(tmp_path), "fashion-mnist", name) in message
        assert f"fashion-mnist.s3-website.eu-central-1.amazonaws.com/{name}" in message
    assert "download=True" in message


def test_load_mnist_checks_images_against_labels(tmp_path):
    rng = np.random.default_rng(3)
    make_mnist_folder(tmp_path / "mnist", "train", 4, rng)
    write(tmp_path / "mnist" / "train-labels-idx1-ubyte.gz", idx_bytes(np.zeros(3, dtype=np.uint8)), gz=True)
    with pytest.raises(ValueError, match=r"should hold 4 uint8 labels.*shape \(3,\)"):
        load_mnist(tmp_path, "train")
    write(tmp_path / "mnist" / "train-images-idx3-ubyte.gz", idx_bytes(np.zeros((4, 28, 27), np.uint8)), gz=True)
    with pytest.raises(ValueError, match=r"shape \(n, 28, 28\), got uint8 of shape \(4, 28, 27\)"):
        load_mnist(tmp_path, "train")


def test_load_mnist_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match=r"split must be one of 'train', 'test'; got 'valid'"):
        load_mnist(tmp_path, "valid")
    with pytest.raises(ValueError, match=r"kind must be one of 'mnist', 'fashion'; got 'kmnist'"):
        load_mnist(tmp_path, "train", kind="kmnist")


def offline(*args, **kwargs):
    raise urllib.error.URLError("network is unreachable (test)")


def test_load_mnist_download_failure_is_clear_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DownloadError) as info:
        load_mnist(tmp_path, "test", download=True)
    message = str(info.value)
    assert "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-images-idx3-ubyte.gz" in message
    assert "network is unreachable" in message
    assert os.path.join(str(tmp_path), "mnist", "t10k-images-idx3-ubyte.gz") in message
    assert "9fb629c4189551a2d022fa330f9573f3" in message
    assert os.listdir(tmp_path / "mnist") == []  # no partial file left behind


class FakeResponse(io.BytesIO):
    """What urlopen returns, enough for reading in blocks inside a with-statement."""


def serve(payloads):
    def urlopen(url, timeout=None):
        if url not in payloads:
            raise urllib.error.HTTPError(url, 404, "Not Found", {}, None)
        return FakeResponse(payloads[url])
    return urlopen


def test_download_verifies_checksum_and_writes_atomically(tmp_path, monkeypatch):
    payload = b"some dataset bytes" * 1000
    md5 = hashlib.md5(payload).hexdigest()
    monkeypatch.setattr(urllib.request, "urlopen", serve({"https://b/f.gz": payload}))
    dest = str(tmp_path / "sub" / "f.gz")
    readers._download(["https://a/f.gz", "https://b/f.gz"], dest, md5)  # first mirror 404s, second works
    with open(dest, "rb") as f:
        assert f.read() == payload
    assert os.stat(dest).st_mode & 0o777 == 0o644
    os.remove(dest)
    with pytest.raises(DownloadError, match=f"checksum mismatch, expected MD5 {'0' * 32}, got {md5}"):
        readers._download(["https://b/f.gz"], dest, "0" * 32)
    assert os.listdir(tmp_path / "sub") == []


def test_load_mnist_download_success_with_fake_mirror(tmp_path, monkeypatch):
    rng = np.random.default_rng(4)
    images, labels = random_images(rng, 3, (28, 28)), np.array([4, 0, 9], dtype=np.uint8)
    files = {"t10k-images-idx3-ubyte.gz": gzip.compress(idx_bytes(images)),
             "t10k-labels-idx1-ubyte.gz": gzip.compress(idx_bytes(labels))}
    folder, mirrors, _ = readers._MNIST_SOURCES["mnist"]
    checksums = {name: hashlib.md5(blob).hexdigest() for name, blob in files.items()}
    monkeypatch.setitem(readers._MNIST_SOURCES, "mnist", (folder, mirrors, checksums))
    monkeypatch.setattr(urllib.request, "urlopen", serve({mirrors[0] + k: v for k, v in files.items()}))
    x, y = load_mnist(tmp_path, "test", download=True, normalize=False)
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)
    assert sorted(os.listdir(tmp_path / "mnist")) == sorted(files)


def make_cifar_archive(path, rng, n_per_batch=2):
    """A miniature of the official archive: cifar-10-batches-bin/ with the six batch files (and a stray one)."""
    contents = {}
    with tarfile.open(path, "w:gz") as tar:
        for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin", "readme.html"]:
            images = random_images(rng, n_per_batch, (3, 32, 32))
            labels = rng.integers(0, 10, n_per_batch).astype(np.uint8)
            blob = cifar_bytes(images, labels)
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
            contents[name] = (images, labels)
    return contents


def test_load_cifar10_reads_batches_and_reports_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_cifar10(tmp_path, "test")
    message = str(info.value)
    assert os.path.join(str(tmp_path), "cifar-10-batches-bin", "test_batch.bin") in message
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz" in message
    rng = np.random.default_rng(5)
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    batches = {}
    for i in range(1, 6):
        images, labels = random_images(rng, i, (3, 32, 32)), rng.integers(0, 10, i).astype(np.uint8)
        write(folder / f"data_batch_{i}.bin", cifar_bytes(images, labels), gz=(i == 2))
        batches[i] = (images, labels)
    x, y = load_cifar10(tmp_path, "train")
    assert x.shape == (15, 3, 32, 32) and x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(x, np.concatenate([batches[i][0] for i in range(1, 6)]) / np.float32(255))
    np.testing.assert_array_equal(y, np.concatenate([batches[i][1] for i in range(1, 6)]))
    assert load_cifar10(tmp_path, "train", normalize=False, flatten=True)[0].shape == (15, 3072)


def test_load_cifar10_download_extracts_only_batches(tmp_path, monkeypatch):
    rng = np.random.default_rng(6)
    archive = tmp_path / "fake.tar.gz"
    contents = make_cifar_archive(archive, rng)
    blob = archive.read_bytes()
    monkeypatch.setattr(readers, "_CIFAR10_MD5", hashlib.md5(blob).hexdigest())
    monkeypatch.setattr(urllib.request, "urlopen", serve({readers._CIFAR10_URL: blob}))
    root = tmp_path / "root"
    x, y = load_cifar10(root, "test", download=True, normalize=False)
    np.testing.assert_array_equal(x, contents["test_batch.bin"][0])
    np.testing.assert_array_equal(y, contents["test_batch.bin"][1])
    assert "readme.html" not in os.listdir(root / "cifar-10-batches-bin")
    assert os.path.isfile(root / "cifar-10-binary.tar.gz")
    monkeypatch.setattr(urllib.request, "urlopen", offline)  # the verified archive is reused, no network
    os.remove(root / "cifar-10-batches-bin" / "data_batch_3.bin")
    assert load_cifar10(root, "train", download=True)[0].shape == (10, 3, 32, 32)


def test_load_cifar10_rejects_an_archive_without_the_batches(tmp_path, monkeypatch):
    archive = tmp_path / "cifar-10-binary.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-bin/test_batch.bin")
        info.size = 3073
        tar.addfile(info, io.BytesIO(bytes(3073)))
    monkeypatch.setattr(readers, "_CIFAR10_MD5", hashlib.md5(archive.read_bytes()).hexdigest())
    with pytest.raises(ValueError, match=r"lacks cifar-10-batches-bin/data_batch_1\.bin"):
        load_cifar10(tmp_path, "test", download=True)


def test_load_cifar10_download_failure(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DownloadError, match=r"cifar-10-binary\.tar\.gz.*\n.*network is unreachable"):
        load_cifar10(tmp_path, "train", download=True)
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------------------------------------------------
# The bundled digits
# ------------------------------------------------------------------------------------------------------------

def test_digits_file_checksum_shape_and_content():
    with open(data.DIGITS_PATH, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == data.DIGITS_SHA256
    x, y = load_digits("all", normalize=False)
    assert x.shape == (1797, 8, 8) and x.dtype == np.uint8 and y.dtype == np.int64
    assert x.min() == 0 and x.max() == 16
    # Class sizes and the first image of the UCI test set (first row of the published file).
    assert np.bincount(y).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    np.testing.assert_array_equal(x[0, 0], [0, 0, 5, 13, 9, 1, 0, 0])
    assert y[:10].tolist() == list(range(10))


def test_digits_split_sizes_balance_and_normalisation():
    x_tr, y_tr = load_digits("train")
    x_te, y_te = load_digits("test", flatten=True)
    assert x_tr.shape == (1438, 8, 8) and x_te.shape == (359, 64)
    assert x_tr.dtype == np.float32 and 0.0 <= x_tr.min() and x_tr.max() == 1.0
    counts = np.bincount(load_digits("all")[1])
    np.testing.assert_array_equal(np.bincount(y_te, minlength=10), np.floor(0.2 * counts + 0.5))
    np.testing.assert_array_equal(np.bincount(y_tr, minlength=10) + np.bincount(y_te, minlength=10), counts)
    # The two parts are the whole set: same multiset of (image, label) rows.
    rows = lambda x, y: sorted(map(bytes, np.concatenate([x.reshape(len(x), -1), y[:, None]], 1).astype(np.uint8)))
    all_x, all_y = load_digits("all", normalize=False)
    parts = np.concatenate([x_tr.reshape(-1, 64), x_te]) * 16
    assert rows(np.rint(parts), np.concatenate([y_tr, y_te])) == rows(all_x, all_y)


def test_digits_split_is_deterministic_and_seeded():
    a, b = load_digits("test", seed=0), load_digits("test", seed=0)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    c = load_digits("test", seed=1)
    assert not np.array_equal(a[0], c[0])
    assert len(load_digits("test", test_fraction=0.5)[1]) == sum(int(np.floor(0.5 * k + 0.5))
                                                                  for k in [178, 182, 177, 183, 181, 182, 181,
                                                                            179, 174, 180])


def test_digits_detects_a_corrupt_file(tmp_path, monkeypatch):
    with open(data.DIGITS_PATH, "rb") as f:
        blob = bytearray(f.read())
    blob[len(blob) // 2] ^= 0xFF
    bad = write(tmp_path / "digits.npz", bytes(blob))
    monkeypatch.setattr(digits, "DIGITS_PATH", bad)
    with pytest.raises(data.DataFormatError, match=f"digits.npz is corrupt: expected SHA-256 {data.DIGITS_SHA256}"):
        load_digits()


@pytest.mark.parametrize("arrays, pattern", [
    (dict(images=np.zeros((1797, 8, 8), np.uint8), labels=np.zeros(1796, np.uint8)), r"'labels' has shape"),
    (dict(images=np.zeros((1797, 8, 8), np.int64), labels=np.zeros(1797, np.uint8)), r"'images' has dtype int64"),
    (dict(images=np.full((1797, 8, 8), 17, np.uint8), labels=np.zeros(1797, np.uint8)), r"pixels must be 0..16"),
    (dict(images=np.zeros((1797, 8, 8), np.uint8)), r"no array 'labels'"),
])
def test_digits_file_is_read_as_a_checked_archive(tmp_path, monkeypatch, arrays, pattern):
    """Even a file that matches the recorded SHA-256 (here: patched) is read through minibnn.archive and its
    arrays checked: a DataFormatError naming the file, never a wrong data set."""
    from minibnn.archive import write_archive
    path = tmp_path / "digits.npz"
    write_archive(path, arrays, format="minibnn-dataset", version=1)
    monkeypatch.setattr(digits, "DIGITS_PATH", str(path))
    monkeypatch.setattr(digits, "DIGITS_SHA256", hashlib.sha256(path.read_bytes()).hexdigest())
    with pytest.raises(data.DataFormatError, match=pattern) as info:
        load_digits()
    assert "digits.npz" in str(info.value)


def test_the_bundled_digits_file_is_an_archive_without_pickle():
    from minibnn.archive import read_archive
    archive = read_archive(data.DIGITS_PATH, format="minibnn-dataset", version=1, kind="data set")
    assert sorted(archive.arrays) == ["images", "labels"]
    with np.load(data.DIGITS_PATH, allow_pickle=False) as plain:        # still a plain .npz
        assert plain["images"].shape == (1797, 8, 8)


@pytest.mark.parametrize("kwargs, error, pattern", [
    (dict(split="valid"), ValueError, r"split must be one of 'train', 'test', 'all'; got 'valid'"),
    (dict(test_fraction=1.0), ValueError, r"test_fraction must be strictly between 0 and 1, got 1.0"),
    (dict(test_fraction="0.2"), TypeError, r"test_fraction must be a real number"),
    (dict(flatten=None), TypeError, r"flatten must be True or False"),
])
def test_digits_bad_arguments(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        load_digits(**kwargs)


@FAST
@given(labels=st.lists(st.integers(0, 4), min_size=1, max_size=80), fraction=st.floats(0.05, 0.95),
       seed=st.integers(0, 2**32 - 1))
def test_stratified_split_partitions_each_class(labels, fraction, seed):
    y = np.array(labels)
    train, test = stratified_split(y, fraction, seed)
    np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(len(y)))
    for c in np.unique(y):
        assert np.sum(y[test] == c) == int(np.floor(fraction * np.sum(y == c) + 0.5))
    again = stratified_split(y, fraction, seed)
    np.testing.assert_array_equal(test, again[1])


# ------------------------------------------------------------------------------------------------------------
# Synthetic sets
# ------------------------------------------------------------------------------------------------------------

@FAST
@given(n=st.integers(1, 200), k=st.integers(1, 6), dim=st.integers(1, 5), seed=st.integers(0, 2**32 - 1))
def test_make_blobs_shapes_balance_and_seed(n, k, dim, seed):
    x, y = make_blobs(n, centers=k, dim=dim, std=0.3, seed=seed)
    assert x.shape == (n, dim) and x.dtype == np.float32 and y.dtype == np.int64
    counts = np.bincount(y, minlength=k)
    assert counts.max() - counts.min() <= 1 and counts.sum() == n
    x2, y2 = make_blobs(n, centers=k, dim=dim, std=0.3, seed=seed)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)


def test_make_blobs_given_centres_and_spread():
    centres = np.array([[0.0, 0.0, 0.0], [10.0, -10.0, 5.0]])
    x, y = make_blobs(5, centers=centres, std=0.0)
    np.testing.assert_array_equal(x, centres[y].astype(np.float32))
    x, y = make_blobs(20000, centers=centres, std=2.0, seed=1)
    # Per-class sample std of 10000 draws: standard error of the std is about 2 / sqrt(2 * 10000) = 0.014.
    for c in range(2):
        np.testing.assert_allclose(x[y == c].mean(0), centres[c], atol=6 * 2 / 100)
        np.testing.assert_allclose(x[y == c].std(0), 2.0, atol=6 * 0.014)
    with pytest.raises(ValueError, match=r"dim=2 does not match centers of shape \(2, 3\)"):
        make_blobs(10, centers=centres, dim=2)
    with pytest.raises(ValueError, match="n must be an int >= 1, got 0"):
        make_blobs(0)


def test_make_spirals_geometry():
    x, y = make_spirals(90, classes=3, noise=0.0, seed=0)
    assert x.shape == (90, 2) and x.dtype == np.float32 and np.bincount(y).tolist() == [30, 30, 30]
    radius, angle = np.hypot(x[:, 0], x[:, 1]), np.arctan2(x[:, 1], x[:, 0])
    assert radius.max() <= 1.0 + 1e-6
    for c in range(3):  # without noise each point sits on its arm: angle = 2 pi (c / 3 + r) mod 2 pi
        expected = 2 * np.pi * (c / 3 + radius[y == c])
        gap = np.angle(np.exp(1j * (angle[y == c] - expected)))
        assert np.all(np.abs(gap[radius[y == c] > 1e-3]) < 1e-4)
    a, b = make_spirals(50, noise=0.2, seed=3), make_spirals(50, noise=0.2, seed=3)
    np.testing.assert_array_equal(a[0], b[0])
    with pytest.raises(ValueError, match="noise must be >= 0"):
        make_spirals(10, noise=-1.0)


def test_make_gaussian_points():
    x, y = make_gaussian_points(4001, dim=3, seed=2)
    assert x.shape == (4001, 3) and x.dtype == np.float32 and y.dtype == np.int64
    assert y.sum() == 2000  # strictly outside the median radius: exactly half, the median point inside
    radius = np.linalg.norm(x, axis=1)
    assert radius[y == 1].min() > radius[y == 0].max()
    # Mean of 4001 standard normal draws per coordinate: standard error 1 / sqrt(4001) = 0.016.
    assert np.all(np.abs(x.mean(0)) < 5 * 0.016)
    np.testing.assert_array_equal(make_gaussian_points(10, seed=4)[0], make_gaussian_points(10, seed=4)[0])
    with pytest.raises(ValueError, match="dim must be an int >= 1, got 0"):
        make_gaussian_points(10, dim=0)


# ------------------------------------------------------------------------------------------------------------
# The module itself
# ------------------------------------------------------------------------------------------------------------

def test_package_is_pure_numpy():
    """minibnn.data must not import the autograd engine (of minibnn, only the checks, the atomic writer and the
    archive reader, itself built on those two)."""
    imported = set()
    folder = os.path.dirname(data.__file__)
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".py"):
            continue
        with open(os.path.join(folder, name), encoding="utf-8") as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level:
                prefix = "." * node.level
                imported.update([prefix + node.module] if node.module else
                                [prefix + alias.name for alias in node.names])
            elif isinstance(node, ast.ImportFrom):
                imported.add(node.module.split(".")[0])
    assert imported <= {"__future__", "gzip", "hashlib", "http", "math", "operator", "os", "sys", "tarfile",
                        "tempfile", "urllib", "zlib", "typing", "numpy", "..atomic", ".._checks", "..archive",
                        ".loader", ".digits", ".readers", ".synthetic"}, imported


@pytest.mark.parametrize("reader, header", [
    (read_idx, bytes([0, 0, 0x08, 3, 0, 0, 0, 1, 0, 0, 0, 28, 0, 0, 0, 28])),    # claims one 28x28 image
    (read_cifar10_batch, b""),
])
def test_gzip_bomb_is_refused_in_bounded_memory(tmp_path, monkeypatch, reader, header):
    """Issue 10, defect 9: a small .gz inflating far beyond what its header (or the CIFAR-10 bound) allows is
    refused after reading at most that much plus one chunk, not after inflating the whole stream."""
    import tracemalloc
    monkeypatch.setattr(readers, "CIFAR10_MAX_RECORDS", 1000)    # 3 MB instead of the whole set's 184 MB
    size = 64 << 20
    path = tmp_path / "bomb.gz"
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(header)
        zeros = bytes(1 << 20)
        for _ in range(size >> 20):
            f.write(zeros)
    assert path.stat().st_size < size // 100
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="bomb.gz is corrupt: it decompresses to more than"):
            reader(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, peak
