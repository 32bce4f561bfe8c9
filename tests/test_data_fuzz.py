"""The data readers against corrupted and crafted IDX / CIFAR-10 / gzip files (issue 10): DataFormatError naming
the file, or exactly what an independent reference parser reads -- see tests/data_fuzz.py (the long run:
``python tests/data_fuzz.py --cases 5000``). The gzip bomb has its own test in tests/test_data.py."""
from __future__ import annotations

import numpy as np
import pytest

import data_fuzz
from minibnn.data import DataFormatError, read_cifar10_batch, read_idx


def test_fuzzed_data_files_are_refused_or_read_exactly(tmp_path):
    counts, failures = data_fuzz.run(400, seed=2026, folder=str(tmp_path), verbose=False)
    assert failures == []
    for kind in ("idx", "idx.gz", "cifar", "cifar.gz"):
        assert counts[kind]["refused"] > 0 and counts[kind]["read"] > 0


@pytest.mark.parametrize("reader", [read_idx, read_cifar10_batch])
def test_unreadable_paths_raise_data_format_error_with_the_name(tmp_path, reader):
    for path in (tmp_path, tmp_path / "missing.bin"):
        with pytest.raises(DataFormatError, match="could not be read") as info:
            reader(path)
        assert str(path) in str(info.value)
    assert issubclass(DataFormatError, ValueError)


def test_corrupt_gzip_header_flags_are_data_format_errors(tmp_path):
    import gzip
    z = gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 1, 7]), mtime=0)
    (tmp_path / "f.gz").write_bytes(z[:3] + b"\x08" + z[4:10] + b"unterminated name")
    with pytest.raises(DataFormatError, match="f.gz"):
        read_idx(tmp_path / "f.gz")
    (tmp_path / "ok.gz").write_bytes(z)
    np.testing.assert_array_equal(read_idx(tmp_path / "ok.gz"), [7])
