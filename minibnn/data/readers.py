"""File readers: MNIST / Fashion-MNIST (IDX files) and CIFAR-10 (binary batches), optionally downloaded.

``read_idx`` and ``read_cifar10_batch`` read one file each (gzipped or not) and say precisely what is wrong
with a file that is truncated or corrupt: every problem with a file's content (or reading it) is a
:class:`DataFormatError` (a ``ValueError``) naming the file, never another exception. ``load_mnist`` and
``load_cifar10`` find the official files in a data folder, fetch missing ones when asked (checked against
their published MD5, written atomically) and return ``(x, y)`` arrays. Nothing is ever unpickled: CIFAR-10
is read from its binary (not its pickled Python) distribution.

Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "labels-idx1-ubyte")
    >>> with open(path, "wb") as f:
    ...     _ = f.write(bytes([0, 0, 0x08, 1, 0, 0, 0, 3, 7, 0, 9]))
    >>> read_idx(path)
    array([7, 0, 9], dtype=uint8)
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import math
import os
import sys
import tarfile
import tempfile
import urllib.request
import zlib
from typing import Sequence

import numpy as np

from .. import _checks
from ..atomic import atomic_write

class DataFormatError(ValueError):
    """A data file that cannot be read, or is truncated, corrupt or not of its format; the message names it."""


def finish_images(images: np.ndarray, labels: np.ndarray, scale: float, normalize: bool,
                   flatten: bool) -> tuple[np.ndarray, np.ndarray]:
    """The shared tail of the image loaders (here and ``load_digits``): uint8 pixels to float32 ``pixel / scale``
    in [0, 1] when `normalize`, one row per image when `flatten`, labels as int64."""
    x = (images.astype(np.float32) / np.float32(scale)) if normalize else np.array(images, dtype=np.uint8)
    if flatten:
        x = x.reshape(x.shape[0], -1)
    return x, labels.astype(np.int64)



# ----------------------------------------------------------------------------------------------------------
# File formats: IDX (MNIST, Fashion-MNIST) and CIFAR-10 binary batches
# ----------------------------------------------------------------------------------------------------------

_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path, where: str, max_size) -> tuple[bytes, str]:
    """The content of `path`, gunzipped if it starts with the gzip magic, and how to name its size in messages.

    A gzip stream is decompressed 1 MiB at a time and only while it can still be a valid file:
    ``max_size(data so far)`` is the largest size a valid file starting with those bytes has (None: not known
    yet). So a small ``.gz`` that inflates to gigabytes (a gzip bomb) is refused after at most that many bytes
    plus 1 MiB, in bounded memory and time.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            if f.read(2) != _GZIP_MAGIC:
                f.seek(0)
                return f.read(), "size"                   # a plain file: its size on disk bounds the read
    except OSError as err:
        raise DataFormatError(f"{where}: {path} could not be read: {err}") from err
    data = bytearray()
    try:
        with gzip.open(path, "rb") as stream:
            while True:
                limit = max_size(bytes(data[:4 + 4 * 255]))   # the longest possible header
                if limit is not None and len(data) > limit:
                    raise DataFormatError(f"{where}: {path} is corrupt: it decompresses to more than {limit} bytes, "
                                     f"more than a valid file starting with its bytes holds (decompression was "
                                     f"stopped there: a damaged file, or a gzip bomb)")
                chunk = stream.read(1 << 20)
                if not chunk:
                    return bytes(data), "decompressed size"
                data += chunk
    except (EOFError, OSError, zlib.error) as err:      # (our own DataFormatError above passes through)
        raise DataFormatError(f"{where}: {path} is a truncated or corrupt gzip file ({os.path.getsize(path)} "
                              f"compressed bytes): {err}") from err


def _idx_max_size(head: bytes):
    """The size of an IDX file whose first bytes are `head`, from its header (None while the header is short)."""
    if len(head) < 4:
        return None
    if len(head) < 4 + 4 * head[3]:
        return None
    dtype = _IDX_DTYPES.get(head[2])
    shape = np.frombuffer(head, dtype=">u4", count=head[3], offset=4)
    return 0 if dtype is None else 4 + 4 * head[3] + math.prod(int(d) for d in shape) * dtype.itemsize


# IDX type codes (third byte of the magic number) -> NumPy dtype; multi-byte values are big-endian.
_IDX_DTYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path) -> np.ndarray:
    """Read an IDX file (the MNIST / Fashion-MNIST format), gzipped or not, into a NumPy array.

    Layout: magic number ``0x00 0x00 <type> <ndim>``, then `ndim` big-endian uint32 sizes, then the values in
    C order, big-endian. Type codes: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
    0x0E float64. A file starting with the gzip magic bytes is decompressed first, whatever its name.

    Args:
        path: path of the file (str or os.PathLike).

    Returns:
        A new, writable array of shape ``(size_1, ..., size_ndim)`` in the file's type, native byte order.

    Raises:
        DataFormatError: (a ValueError) bad magic number, unknown type code, or a file whose size does not
            match its header (truncated or with trailing bytes), or that cannot be read; the message names the
            file, the expected and the given size.

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "tiny-idx2-ubyte")
        >>> with open(path, "wb") as f:
        ...     _ = f.write(bytes([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6]))
        >>> read_idx(path)
        array([[1, 2, 3],
               [4, 5, 6]], dtype=uint8)
    """
    data, what = _read_bytes(path, "read_idx", _idx_max_size)
    path = os.fspath(path)
    if len(data) < 4:
        raise DataFormatError(f"read_idx: {path} is truncated: an IDX file starts with a 4-byte magic number, "
                         f"but its {what} is {len(data)} bytes")
    zero0, zero1, code, ndim = data[0], data[1], data[2], data[3]
    if zero0 != 0 or zero1 != 0:
        raise DataFormatError(f"read_idx: {path} is not an IDX file: its magic number 0x{data[:4].hex()} should start "
                         f"with two zero bytes (0x0000....)")
    if code not in _IDX_DTYPES:
        known = ", ".join(f"0x{c:02x} ({d.name})" for c, d in _IDX_DTYPES.items())
        raise DataFormatError(f"read_idx: {path} has unknown IDX type code 0x{code:02x}; expected one of {known}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataFormatError(f"read_idx: {path} is truncated: its header declares {ndim} dimensions, so it needs "
                         f"{header} header bytes, but its {what} is {len(data)} bytes")
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[code]
    expected = header + math.prod(shape) * dtype.itemsize
    if len(data) != expected:
        kind = "truncated" if len(data) < expected else "corrupt (it has trailing bytes)"
        raise DataFormatError(f"read_idx: {path} is {kind}: its header declares shape {shape} of {dtype.name}, so "
                         f"its {what} should be {expected} bytes, but it is {len(data)} bytes")
    values = np.frombuffer(data, dtype=dtype, count=math.prod(shape), offset=header)
    return values.astype(dtype.newbyteorder("="), copy=True).reshape(shape)


CIFAR10_RECORD_BYTES = 1 + 3 * 32 * 32  # one label byte, then 1024 red, 1024 green and 1024 blue pixel bytes
#: the most records a gzipped batch may inflate to (the whole set in one file): the bound of its decompression
CIFAR10_MAX_RECORDS = 60000


def read_cifar10_batch(path) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 binary batch file (``data_batch_1.bin`` ... ``test_batch.bin``), gzipped or not.

    The file is a sequence of 3073-byte records: 1 label byte (0..9), then the 32x32 image as 1024 red, 1024
    green and 1024 blue bytes, each plane row by row. The official files hold 10000 records (30,730,000 bytes).

    Args:
        path: path of the file (str or os.PathLike).

    Returns:
        ``(images, labels)``: uint8 arrays of shapes (n, 3, 32, 32) (channels first) and (n,).

    Raises:
        DataFormatError: (a ValueError) a file that is empty, not a whole number of records (truncated or
            corrupt), holds a label above 9, or cannot be read; the message names the file and the sizes.

    Example:
        >>> import os, tempfile, numpy as np
        >>> path = os.path.join(tempfile.mkdtemp(), "data_batch_1.bin")
        >>> record = np.concatenate([[7], np.full(3072, 200)]).astype(np.uint8)
        >>> record.tofile(path)
        >>> images, labels = read_cifar10_batch(path)
        >>> images.shape, labels.tolist(), int(images[0, 2, 31, 31])
        ((1, 3, 32, 32), [7], 200)
    """
    data, what = _read_bytes(path, "read_cifar10_batch", lambda head: CIFAR10_MAX_RECORDS * CIFAR10_RECORD_BYTES)
    path = os.fspath(path)
    n, extra = divmod(len(data), CIFAR10_RECORD_BYTES)
    if n == 0 or extra:
        raise DataFormatError(f"read_cifar10_batch: {path} is truncated or corrupt: a CIFAR-10 binary batch is a whole "
                         f"number of {CIFAR10_RECORD_BYTES}-byte records (the official files have 10000 records = "
                         f"{10000 * CIFAR10_RECORD_BYTES} bytes), but its {what} is {len(data)} bytes "
                         f"({n} records and {extra} bytes over)")
    records = np.frombuffer(data, dtype=np.uint8).reshape(n, CIFAR10_RECORD_BYTES)
    labels = records[:, 0].copy()
    if labels.max() > 9:
        bad = int(np.argmax(labels > 9))
        raise DataFormatError(f"read_cifar10_batch: {path} is corrupt: record {bad} has label {labels[bad]}, "
                         f"expected a class 0..9")
    return records[:, 1:].reshape(n, 3, 32, 32).copy(), labels


# ----------------------------------------------------------------------------------------------------------
# Downloads (optional) and the MNIST / Fashion-MNIST / CIFAR-10 loaders
# ----------------------------------------------------------------------------------------------------------

class DownloadError(OSError):
    """A dataset file could not be downloaded, or the download did not match its published checksum."""


def _md5_of(path: str) -> str:
    digest = hashlib.md5(usedforsecurity=False)  # the published checksums are MD5: integrity, not security
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(urls: Sequence[str], dest: str, md5: str, timeout: float = 60.0) -> None:
    """Fetch the first of `urls` that works into `dest`, atomically, keeping it only if its MD5 is `md5`.

    The bytes go to a temporary file next to `dest`, which is renamed onto `dest` (``os.replace``) once the
    checksum matches, so `dest` either does not exist or is complete and verified. Raises ``DownloadError``
    listing what went wrong with each URL.
    """
    folder = os.path.dirname(os.path.abspath(dest))
    os.makedirs(folder, exist_ok=True)
    failures = []
    for url in urls:
        print(f"minibnn: downloading {url} -> {dest}", file=sys.stderr)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(dest)}.", suffix=".part")
        try:
            digest = hashlib.md5(usedforsecurity=False)
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
                for block in iter(lambda: response.read(1 << 20), b""):
                    digest.update(block)
                    out.write(block)
            if digest.hexdigest() != md5:
                failures.append(f"{url}: checksum mismatch, expected MD5 {md5}, got {digest.hexdigest()}")
                continue
            os.chmod(tmp, 0o644)  # mkstemp makes the file private; a data file is for every user
            os.replace(tmp, dest)
            return
        except (OSError, ValueError, http.client.HTTPException) as err:
            # OSError covers URLError, HTTPError and timeouts; ValueError a malformed URL; HTTPException a
            # transfer cut short (IncompleteRead). Any of them means: try the next mirror.
            failures.append(f"{url}: {type(err).__name__}: {err}")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    raise DownloadError(f"could not download {os.path.basename(dest)}:\n  " + "\n  ".join(failures)
                        + f"\nDownload it by hand from {urls[0]} and save it as {dest} (expected MD5 {md5}).")


MNIST_CLASSES = tuple(str(d) for d in range(10))
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

# kind -> (sub-folder of root, mirrors tried in order, {file name: published MD5})
_MNIST_SOURCES = {
    "mnist": ("mnist",
              ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
              {"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
               "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
               "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
               "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"}),
    "fashion": ("fashion-mnist",
                ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                 "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"),
                {"train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                 "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
                 "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
                 "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"}),
}


def load_mnist(root, split: str = "train", kind: str = "mnist", download: bool = False,
               normalize: bool = True, flatten: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """MNIST (LeCun et al. 1998) or Fashion-MNIST (Xiao et al. 2017) from the official IDX files in `root`.

    The files live in ``root/mnist/`` or ``root/fashion-mnist/`` (both use the same four file names):
    ``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz``,
    ``t10k-labels-idx1-ubyte.gz``; gunzipped copies without the ``.gz`` suffix are read as well. When a file is
    missing and `download` is True it is fetched (urllib), checked against its published MD5 and written
    atomically; otherwise the error says which file to put where and where to get it.

    Args:
        root: data folder (str or os.PathLike).
        split: "train" (60000 images) or "test" (10000 images).
        kind: "mnist" (digits) or "fashion" (clothes; class names in ``FASHION_MNIST_CLASSES``).
        download: fetch missing files from the official mirrors.
        normalize: if True, x is float32 ``pixel / 255`` in [0, 1]; if False, the raw uint8 pixels.
        flatten: if True, x has shape (n, 784); otherwise (n, 28, 28).

    Returns:
        ``(x, y)``: images as described above and labels 0..9 as int64 of shape (n,).

    Raises:
        FileNotFoundError: files missing and `download` is False. DownloadError: a download failed.
        ValueError: bad arguments. DataFormatError (a ValueError): files that are corrupt or do not match each
            other.

    Example: ``x, y = load_mnist("data", "train", download=True)`` gives x of shape (60000, 28, 28). Without
    the files and without ``download``, the error says which file to put where:

        >>> import tempfile
        >>> load_mnist(tempfile.mkdtemp(), "test")
        Traceback (most recent call last):
        ...
        FileNotFoundError: load_mnist(kind='mnist', split='test'): missing file(s):
        ...
    """
    where = "load_mnist"
    _checks.choice(where, "split", split, ("train", "test"))
    _checks.choice(where, "kind", kind, tuple(_MNIST_SOURCES))
    download = _checks.boolean(where, "download", download)
    normalize = _checks.boolean(where, "normalize", normalize)
    flatten = _checks.boolean(where, "flatten", flatten)
    folder_name, mirrors, checksums = _MNIST_SOURCES[kind]
    folder = os.path.join(os.fspath(root), folder_name)
    prefix = "train" if split == "train" else "t10k"
    names = [f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz"]

    def existing(name: str):
        for candidate in (os.path.join(folder, name), os.path.join(folder, name[:-len(".gz")])):
            if os.path.isfile(candidate):
                return candidate
        return None

    missing = [name for name in names if existing(name) is None]
    if missing and not download:
        lines = "\n".join(f"  {os.path.join(folder, name)}   from {mirrors[0]}{name}" for name in missing)
        raise FileNotFoundError(
            f"{where}(kind={kind!r}, split={split!r}): missing file(s):\n{lines}\nPut them in {folder} (gzipped as "
            f"named, or gunzipped without .gz), or call load_mnist(..., download=True).")
    for name in missing:
        _download([m + name for m in mirrors], os.path.join(folder, name), checksums[name])
    image_path, label_path = existing(names[0]), existing(names[1])
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataFormatError(f"{where}: {image_path} should hold uint8 images of shape (n, 28, 28), got "
                         f"{images.dtype} of shape {images.shape}")
    if labels.dtype != np.uint8 or labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise DataFormatError(f"{where}: {label_path} should hold {images.shape[0]} uint8 labels (one per image in "
                         f"{image_path}), got {labels.dtype} of shape {labels.shape}")
    if labels.size and labels.max() > 9:
        raise DataFormatError(f"{where}: {label_path} is corrupt: it holds label {labels.max()}, expected 0..9")
    return finish_images(images, labels, 255.0, normalize, flatten)


_CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
_CIFAR10_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
_CIFAR10_DIR = "cifar-10-batches-bin"
_CIFAR10_FILES = {"train": [f"data_batch_{i}.bin" for i in range(1, 6)], "test": ["test_batch.bin"]}


def _extract_cifar10(archive: str, folder: str) -> None:
    """Copy the six batch files out of the official archive into `folder`, each written atomically.

    Only the expected member names are read (no ``extractall``), so a hostile archive cannot write elsewhere.
    """
    os.makedirs(folder, exist_ok=True)
    wanted = {f"{_CIFAR10_DIR}/{name}": name for names in _CIFAR10_FILES.values() for name in names}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                if member.name not in wanted or not member.isfile():
                    continue
                with atomic_write(os.path.join(folder, wanted[member.name])) as out:
                    out.write(tar.extractfile(member).read())
                del wanted[member.name]
    except (tarfile.TarError, EOFError, zlib.error) as err:
        raise DataFormatError(f"load_cifar10: {archive} is a truncated or corrupt archive: {err}") from err
    if wanted:
        raise DataFormatError(f"load_cifar10: {archive} lacks {', '.join(sorted(wanted))}: it is not the CIFAR-10 "
                              f"binary archive ({_CIFAR10_URL})")


def load_cifar10(root, split: str = "train", download: bool = False, normalize: bool = True,
                 flatten: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 (Krizhevsky 2009) from its official *binary* batch files in ``root/cifar-10-batches-bin/``.

    "train" reads ``data_batch_1.bin`` ... ``data_batch_5.bin`` (50000 images), "test" reads ``test_batch.bin``
    (10000 images); see ``read_cifar10_batch`` for the record layout. The pickled Python version of the set is
    never used. With `download`, the archive ``cifar-10-binary.tar.gz`` (162 MB) is fetched into `root`, its
    MD5 checked, and the batch files copied out of it; without, missing files raise an error that says where
    to put them.

    Args:
        root: data folder (str or os.PathLike); extracting the official archive there creates the right layout.
        split: "train" or "test".
        download: fetch and extract the archive when batch files are missing.
        normalize: if True, x is float32 ``pixel / 255`` in [0, 1]; if False, the raw uint8 pixels.
        flatten: if True, x has shape (n, 3072); otherwise (n, 3, 32, 32), channels first.

    Returns:
        ``(x, y)``: images as described above and labels 0..9 as int64 (names in ``CIFAR10_CLASSES``).

    Raises:
        FileNotFoundError: files missing and `download` is False. DownloadError: the download failed.
        ValueError: bad arguments. DataFormatError (a ValueError): a batch file (or the archive) that is corrupt.

    Example: ``x, y = load_cifar10("data", "test", download=True)`` gives x of shape (10000, 3, 32, 32), and
    ``CIFAR10_CLASSES[y[0]]`` is ``'cat'``. Without the files and without ``download``:

        >>> import tempfile
        >>> load_cifar10(tempfile.mkdtemp(), "test")
        Traceback (most recent call last):
        ...
        FileNotFoundError: load_cifar10(split='test'): missing file(s):
        ...
    """
    where = "load_cifar10"
    _checks.choice(where, "split", split, ("train", "test"))
    download = _checks.boolean(where, "download", download)
    normalize = _checks.boolean(where, "normalize", normalize)
    flatten = _checks.boolean(where, "flatten", flatten)
    root = os.fspath(root)
    folder = os.path.join(root, _CIFAR10_DIR)
    paths = [os.path.join(folder, name) for name in _CIFAR10_FILES[split]]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing and not download:
        lines = "\n".join(f"  {p}" for p in missing)
        raise FileNotFoundError(
            f"{where}(split={split!r}): missing file(s):\n{lines}\nDownload {_CIFAR10_URL} (MD5 {_CIFAR10_MD5}) and "
            f"extract it in {root} (it unpacks into {_CIFAR10_DIR}/), or call load_cifar10(..., download=True).")
    if missing:
        archive = os.path.join(root, os.path.basename(_CIFAR10_URL))
        if not (os.path.isfile(archive) and _md5_of(archive) == _CIFAR10_MD5):
            _download([_CIFAR10_URL], archive, _CIFAR10_MD5)
        _extract_cifar10(archive, folder)
    batches = [read_cifar10_batch(p) for p in paths]
    images = np.concatenate([b[0] for b in batches])
    labels = np.concatenate([b[1] for b in batches])
    return finish_images(images, labels, 255.0, normalize, flatten)


