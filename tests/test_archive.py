"""minibnn.archive: the one verified .npz reader/writer (checkpoints now; packed models and data sets next)."""
import json
import os
import tracemalloc
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from checkpoint_fuzz import npy, npy_header, rezip, unzip, with_metadata
from strategies import CHEAP, non_contiguous
from minibnn.archive import Archive, RESERVED_KEYS, array_sha256, read_archive, write_archive


class DemoError(ValueError):
    pass


def read(path, **kwargs):
    return read_archive(path, format="demo", version=2, kind="demo file", error=DemoError, **kwargs)


ARRAYS = {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "b/0": np.array([True, False]),
          "scalar": np.array(7, dtype=np.int64), "empty": np.zeros((0, 5), np.uint8),
          "c": np.array([1 + 2j], np.complex128), "be": np.arange(3, dtype=">i4"),
          "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)), "view": np.arange(20.0)[::3]}


@pytest.fixture
def demo(tmp_path):
    path = tmp_path / "demo.npz"
    write_archive(path, ARRAYS, {"note": "β", "nested": {"x": [1, None, 2.5]}}, format="demo", version=2)
    return path


def test_round_trip_keeps_values_dtypes_shapes_and_metadata(demo):
    archive = read(demo)
    assert isinstance(archive, Archive) and archive.path == str(demo)
    assert archive.metadata == {"note": "β", "nested": {"x": [1, None, 2.5]}}
    assert set(archive.arrays) == set(ARRAYS)
    for name, value in ARRAYS.items():
        got = archive.arrays[name]
        assert got.dtype == value.dtype and got.shape == value.shape and np.array_equal(got, value)
        assert got.flags.writeable
    with np.load(demo, allow_pickle=False) as plain:   # still an ordinary .npz
        assert np.array_equal(plain["w"], ARRAYS["w"])
        table = json.loads(plain["__metadata__"].tobytes())["members"]
    assert table["w"] == {"dtype": "<f4", "shape": [3, 4], "sha256": array_sha256(ARRAYS["w"])}


def test_array_value_and_fail_raise_the_callers_error_naming_the_file(demo):
    archive = read(demo)
    assert archive.array("w", dtype=np.float32, shape=(3, None)) is archive.arrays["w"]
    for call, message in ((lambda: archive.array("nope"), "has no array 'nope'"),
                          (lambda: archive.array("w", dtype="f8"), "dtype float32, expected float64"),
                          (lambda: archive.array("w", shape=(4, 3)), r"shape \(3, 4\), expected \(4, 3\)"),
                          (lambda: archive.array("w", ndim=1), "expected 1 dimensions"),
                          (lambda: archive.value("note", (int,), "an int"), "'note' must be an int, got 'β'"),
                          (lambda: archive.value("missing", (int,), "an int"), "lacks the entry 'missing'"),
                          (lambda: archive.check(True, (int,), "the flag", "an int"), "the flag must be an int")):
        with pytest.raises(DemoError, match=str(demo)) as info:
            call()
        assert info.match(message)
    assert archive.value("nested", (dict,), "a dict") == {"x": [1, None, 2.5]}
    assert str(archive.fail("it is odd")) == f"{demo}: it is odd"


def test_writing_refuses_what_cannot_be_read_back(tmp_path):
    path = tmp_path / "x.npz"
    with pytest.raises(TypeError, match="without pickle"):
        write_archive(path, {"o": np.array([object()])}, format="demo", version=2)
    with pytest.raises(TypeError, match="without pickle"):
        write_archive(path, {"s": np.array(["text"])}, format="demo", version=2)
    with pytest.raises(ValueError, match="reserved keys"):
        write_archive(path, {}, {"members": 1}, format="demo", version=2)
    with pytest.raises(ValueError, match="array names"):
        write_archive(path, {"__metadata__": np.zeros(1)}, format="demo", version=2)
    with pytest.raises(ValueError, match="nested"):
        write_archive(path, {}, {"deep": json.loads("[" * 70 + "]" * 70)}, format="demo", version=2)
    with pytest.raises(TypeError, match="write_archive: version must be an int"):
        write_archive(path, {}, format="demo", version="2")
    assert not path.exists() and os.listdir(tmp_path) == []
    assert RESERVED_KEYS == ("format", "version", "members")


def test_wrong_format_version_or_kind_of_file(demo, tmp_path):
    with pytest.raises(DemoError, match="is not a other file"):
        read_archive(demo, format="other", version=2, kind="other file", error=DemoError)
    with pytest.raises(DemoError, match="format version 2; this minibnn reads version 3"):
        read_archive(demo, format="demo", version=3, kind="demo file", error=DemoError)
    with pytest.raises(FileNotFoundError, match="no demo file at .*missing.npz"):
        read(tmp_path / "missing.npz")
    np.save(tmp_path / "one.npy", np.zeros(2))
    with pytest.raises(DemoError, match="single array"):
        read(tmp_path / "one.npy")


def test_a_huge_claimed_shape_is_refused_without_allocating(tmp_path):
    path = tmp_path / "huge.npz"
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776,), }"
    for members in ([("x.npy", npy_header(header, b"\0" * 64))],
                    [("x.npy", npy_header("{'descr': '<f8', 'fortran_order': False, 'shape': (8388608,), }",
                                          b"\0" * 64))]):
        path.write_bytes(rezip(members, zipfile.ZIP_DEFLATED))
        tracemalloc.start()
        with pytest.raises(DemoError, match="claims shape"):
            read(path)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 1 << 20


def test_a_deflate_bomb_claiming_a_huge_size_is_refused_before_reading(tmp_path):
    path = tmp_path / "bomb.npz"
    path.write_bytes(rezip([("x.npy", npy(np.zeros(1 << 24, np.uint8)))], zipfile.ZIP_DEFLATED))
    with pytest.raises(DemoError, match="more than the 1048576 bytes allowed"):
        read(path, max_bytes=1 << 20)


def test_bounds_on_metadata_and_members(demo):
    with pytest.raises(DemoError, match="more than the 10 allowed"):
        read(demo, max_metadata_bytes=10)
    with pytest.raises(DemoError, match="nested 4 deep, more than the 3 allowed"):
        read(demo, max_depth=3)
    with pytest.raises(DemoError, match="members, more than the 2 allowed"):
        read(demo, max_members=2)
    with pytest.raises(ValueError, match="read_archive: max_depth must be an int >= 1, got 0"):
        read(demo, max_depth=0)


def test_metadata_member_of_the_wrong_kind(demo):
    members = unzip(demo.read_bytes())
    text = json.loads(dict(members)["__metadata__.npy"][128:].decode())
    for array, message in ((np.zeros(3, np.float32), "not UTF-8 bytes"), (np.zeros((1, 3), np.uint8),
                                                                           "not UTF-8 bytes")):
        demo.write_bytes(rezip(with_metadata(members, b"", array)))
        with pytest.raises(DemoError, match=message):
            read(demo)
    assert text["format"] == "demo"


def test_every_member_must_be_listed_once_and_match_its_hash(demo):
    members = unzip(demo.read_bytes())
    cases = [(members + [members[0]], "two members named"),
             (members + [("notes.txt", b"hi")], "not an .npy array"),
             ([m for m in members if m[0] != "w.npy"], r"missing \['w'\]"),
             ([(n, npy(np.zeros((3, 4), np.float32)) if n == "w.npy" else d) for n, d in members],
              "'w' does not match its recorded SHA-256"),
             ([(n, npy(np.zeros((4, 3), np.float32)) if n == "w.npy" else d) for n, d in members],
              "is <f4 \\[4, 3\\], but the metadata records '<f4' \\[3, 4\\]")]
    for crafted, message in cases:
        demo.write_bytes(rezip(crafted))
        with pytest.raises(DemoError, match=message):
            read(demo)


def test_compression_methods_other_than_stored_and_deflated_are_refused(demo):
    blob = bytearray(demo.read_bytes())
    central = blob.index(b"PK\x01\x02")
    blob[central + 10:central + 12] = (14).to_bytes(2, "little")   # LZMA
    demo.write_bytes(bytes(blob))
    with pytest.raises(DemoError, match="compression method 14"):
        read(demo)


_DTYPES = st.sampled_from(["|b1", "<i1", "<u2", ">i4", "<i8", "<u8", "<f2", "<f4", ">f8", "<c8", "<c16"])
_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                                 max_size=3), max_leaves=10)


@settings(max_examples=CHEAP)
@given(arrays=st.dictionaries(st.text(st.characters(blacklist_characters="\0", blacklist_categories=["Cs"]),
                                      min_size=1, max_size=6).filter(lambda n: n != "__metadata__"),
                              hnp.arrays(_DTYPES, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3)),
                              max_size=4),
       meta=st.dictionaries(st.text(max_size=5).filter(lambda k: k not in RESERVED_KEYS), _JSON, max_size=3),
       strided=st.booleans())
def test_any_plain_arrays_and_json_metadata_round_trip_bit_exact(tmp_path_factory, arrays, meta, strided):
    path = tmp_path_factory.mktemp("rt") / "a.npz"
    if strided:
        arrays = {k: non_contiguous(v) if v.ndim else v for k, v in arrays.items()}
    write_archive(path, arrays, meta, format="demo", version=2)
    archive = read(path)
    assert set(archive.arrays) == set(arrays)
    for name, value in arrays.items():
        got = archive.arrays[name]
        assert got.dtype == value.dtype and got.shape == value.shape and got.tobytes() == value.tobytes()
    assert json.dumps(archive.metadata, sort_keys=True) == json.dumps(meta, sort_keys=True)
