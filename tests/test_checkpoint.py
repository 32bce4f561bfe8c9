"""Checkpoints: bit-exact round trips, atomic writes, clear errors for truncated, corrupt or mismatched files."""
from __future__ import annotations

import json
import math
import os
import zipfile

import numpy as np
import pytest

import minibnn
from minibnn import Sequential, Tensor
from minibnn.checkpoint import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint
from minibnn.layers import BatchNorm1d, Linear, ReLU
from minibnn.losses import CrossEntropyLoss
from minibnn.optim import SGD, Adam
from minibnn.schedulers import MultiStepLR, StepLR


def make_model(seed=0, hidden=6):
    minibnn.manual_seed(seed)
    return Sequential(Linear(4, hidden), BatchNorm1d(hidden), ReLU(), Linear(hidden, 3))


def train_steps(model, optimizer, scheduler=None, steps=3, seed=0):
    rng = np.random.default_rng(seed)
    loss_fn = CrossEntropyLoss()
    for _ in range(steps):
        x = Tensor(rng.standard_normal((8, 4)).astype(np.float32))
        y = rng.integers(0, 3, size=8)
        loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()


def trained(seed=0):
    model = make_model(seed)
    opt = Adam([{"params": model[0].parameters()}, {"params": model[3].parameters(), "lr": 0.01},
                {"params": model[1].parameters(), "weight_decay": 0.0}], lr=0.05, weight_decay=1e-3)
    sched = MultiStepLR(opt, milestones=[1, 2], gamma=0.5)
    train_steps(model, opt, sched, seed=seed)
    return model, opt, sched


def assert_same_state(a, b):
    """Two (nested) state dicts are equal, arrays bit for bit with the same dtype."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b)
        for k in a:
            assert_same_state(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b)
        for x, y in zip(a, b):
            assert_same_state(x, y)
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes()
    else:
        assert a == b and type(a) is type(b)


def test_round_trip_is_bit_exact_and_training_continues_identically(tmp_path):
    path = tmp_path / "run.npz"
    model, opt, sched = trained(seed=0)
    extra = {"note": "β test", "ratio": 1 / 3, "big": 1e300, "flags": [True, None], "table": np.arange(5),
             "nested": {"x": np.float32(0.1)}}
    save_checkpoint(path, model, opt, sched, epoch=7, extra=extra)

    model2, opt2, sched2 = trained(seed=1)  # different weights and state
    info = load_checkpoint(path, model2, opt2, sched2)
    assert info["epoch"] == 7
    assert info["extra"]["note"] == "β test" and info["extra"]["ratio"] == 1 / 3
    assert info["extra"]["big"] == 1e300 and info["extra"]["flags"] == [True, None]
    np.testing.assert_array_equal(info["extra"]["table"], np.arange(5))
    assert info["extra"]["nested"]["x"] == float(np.float32(0.1))

    assert_same_state(dict(model.state_dict()), dict(model2.state_dict()))
    assert_same_state(opt.state_dict(), opt2.state_dict())
    assert_same_state(sched.state_dict(), sched2.state_dict())
    assert opt2.param_groups[0]["betas"] == (0.9, 0.999)

    train_steps(model, opt, sched, steps=2, seed=5)
    train_steps(model2, opt2, sched2, steps=2, seed=5)
    assert_same_state(dict(model.state_dict()), dict(model2.state_dict()))
    assert_same_state(opt.state_dict(), opt2.state_dict())


def test_file_is_a_plain_npz_without_pickle(tmp_path):
    path = tmp_path / "run.npz"
    model, opt, sched = trained()
    save_checkpoint(path, model, opt, sched, epoch=1)
    with np.load(path, allow_pickle=False) as archive:
        names = set(archive.files)
        assert "model/0.weight" in names and "model/1.running_mean" in names
        assert "optimizer/state/0/exp_avg" in names and "__metadata__" in names
        meta = json.loads(archive["__metadata__"].tobytes())
    assert meta["format"] == "minibnn-checkpoint" and meta["epoch"] == 1
    assert meta["optimizer"]["class"] == "Adam" and meta["scheduler"]["class"] == "MultiStepLR"
    assert os.listdir(tmp_path) == ["run.npz"]  # no temporary file left behind


def test_model_only_and_float64(tmp_path):
    path = tmp_path / "m.npz"
    model = make_model().astype(np.float64)
    save_checkpoint(path, model)
    other = make_model(seed=3).astype(np.float64)
    assert load_checkpoint(path, other) == {"epoch": None, "extra": None}
    assert_same_state(dict(model.state_dict()), dict(other.state_dict()))


def test_a_failed_write_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "run.npz"
    model, opt, sched = trained()
    save_checkpoint(path, model, opt, sched, epoch=1)
    before = path.read_bytes()

    train_steps(model, opt, sched, seed=9)
    calls = []
    real_write_array = np.lib.format.write_array

    def failing_write_array(fp, array, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # fail midway, after two arrays went into the temporary file
            raise OSError(28, "No space left on device")
        return real_write_array(fp, array, *args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", failing_write_array)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(path, model, opt, sched, epoch=2)
    assert len(calls) == 3
    monkeypatch.undo()

    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["run.npz"]
    model2, opt2, sched2 = trained(seed=1)
    assert load_checkpoint(path, model2, opt2, sched2)["epoch"] == 1


def test_a_failed_rename_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "run.npz"
    model = make_model()
    save_checkpoint(path, model, epoch=1)
    before = path.read_bytes()

    def failing_replace(src, dst):
        raise PermissionError("replace refused")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(PermissionError):
        save_checkpoint(path, make_model(seed=4), epoch=2)
    monkeypatch.undo()
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["run.npz"]


@pytest.mark.parametrize("keep", [0, 3, 30, 0.5, -1])
def test_truncated_file_raises_an_error_naming_it(tmp_path, keep):
    path = tmp_path / "run.npz"
    model, opt, sched = trained()
    save_checkpoint(path, model, opt, sched, epoch=1)
    blob = path.read_bytes()
    n = int(len(blob) * keep) if isinstance(keep, float) else keep % len(blob)
    path.write_bytes(blob[:n])
    with pytest.raises(CheckpointError, match=str(path)):
        load_checkpoint(path, make_model(), opt, sched)


def _flip(path, position):
    blob = bytearray(path.read_bytes())
    blob[position] ^= 0x5A
    path.write_bytes(bytes(blob))


def test_flipped_bytes_in_an_array_or_in_the_metadata_are_caught(tmp_path):
    path = tmp_path / "run.npz"
    model, opt, _ = trained()
    save_checkpoint(path, model, opt)
    blob = path.read_bytes()
    weight = model.state_dict()["0.weight"]
    for position in (blob.find(weight.tobytes()) + 5, blob.find(b'"format"') + 3):
        assert position > 10
        path.write_bytes(blob)
        _flip(path, position)
        fresh = make_model(seed=2)
        before = dict(fresh.state_dict())
        with pytest.raises(CheckpointError, match=str(path)):
            load_checkpoint(path, fresh)
        assert_same_state(before, dict(fresh.state_dict()))  # nothing was loaded


def test_a_flipped_byte_anywhere_is_caught_or_harmless(tmp_path):
    """Wherever a byte is flipped, loading either fails with CheckpointError or gives back the exact values
    (a few zip header fields, such as timestamps, are not checked and do not matter)."""
    path = tmp_path / "run.npz"
    model, opt, sched = trained()
    save_checkpoint(path, model, opt, sched, epoch=3)
    blob = path.read_bytes()
    rng = np.random.default_rng(0)
    caught = 0
    for position in rng.choice(len(blob), size=40, replace=False):
        path.write_bytes(blob)
        _flip(path, int(position))
        model2, opt2, sched2 = trained(seed=1)
        try:
            info = load_checkpoint(path, model2, opt2, sched2)
        except CheckpointError as err:
            assert str(path) in str(err)
            caught += 1
            continue
        assert info["epoch"] == 3
        assert_same_state(dict(model.state_dict()), dict(model2.state_dict()))
        assert_same_state(opt.state_dict(), opt2.state_dict())
    assert caught >= 30


def test_not_a_checkpoint(tmp_path):
    plain = tmp_path / "plain.npz"
    np.savez(plain, a=np.zeros(3))
    with pytest.raises(CheckpointError, match="not a minibnn checkpoint"):
        read_checkpoint(plain)
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(CheckpointError, match="single array"):
        read_checkpoint(single)
    text = tmp_path / "notes.npz"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        read_checkpoint(text)
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        read_checkpoint(tmp_path / "missing.npz")
    with zipfile.ZipFile(tmp_path / "future.npz", "w") as z:
        with z.open("__metadata__.npy", "w") as f:
            np.lib.format.write_array(f, np.frombuffer(b'{"format": "minibnn-checkpoint", "version": 99}',
                                                       dtype=np.uint8))
    with pytest.raises(CheckpointError, match="version 99"):
        read_checkpoint(tmp_path / "future.npz")


def test_mismatches_raise_and_change_nothing(tmp_path):
    path = tmp_path / "run.npz"
    model, opt, sched = trained()
    save_checkpoint(path, model, opt, sched)

    wider = make_model(hidden=7)
    before = dict(wider.state_dict())
    with pytest.raises(CheckpointError, match=r"'0.weight' is \(\(6, 4\), dtype\('float32'\)\)"):
        load_checkpoint(path, wider)
    assert_same_state(before, dict(wider.state_dict()))

    with pytest.raises(CheckpointError, match="missing entries"):
        load_checkpoint(path, Sequential(Linear(4, 6)))
    with pytest.raises(CheckpointError, match="dtype float64"):
        load_checkpoint(path, make_model().astype(np.float64))

    same = make_model(seed=5)
    with pytest.raises(CheckpointError, match="state of a Adam optimizer, but a SGD"):
        load_checkpoint(path, same, SGD(same.parameters(), lr=0.1))

    # An optimizer of the right class over other groups fails inside its load: the model is rolled back.
    two_groups = Adam([{"params": same[0].parameters()}, {"params": same[1].parameters() + same[3].parameters()}])
    before = dict(same.state_dict())
    with pytest.raises(CheckpointError, match="could not load the optimizer state"):
        load_checkpoint(path, same, two_groups)
    assert_same_state(before, dict(same.state_dict()))

    save_checkpoint(path, model)
    with pytest.raises(CheckpointError, match="holds no scheduler state"):
        load_checkpoint(path, model, scheduler=StepLR(opt, step_size=1))


def test_unsavable_values_are_refused_before_writing(tmp_path):
    path = tmp_path / "run.npz"
    model = make_model()
    with pytest.raises(TypeError, match="cannot store an object of type object"):
        save_checkpoint(path, model, extra={"thing": object()})
    with pytest.raises(TypeError, match="dict keys must be strings"):
        save_checkpoint(path, model, extra={1: 2})
    with pytest.raises(TypeError, match="without pickle"):
        save_checkpoint(path, model, extra={"a": np.array([object()])})
    with pytest.raises(TypeError, match="epoch must be an int"):
        save_checkpoint(path, model, epoch=1.5)
    assert not path.exists() and os.listdir(tmp_path) == []


def test_special_floats_survive(tmp_path):
    path = tmp_path / "run.npz"
    save_checkpoint(path, make_model(), extra={"nan": math.nan, "inf": -math.inf, "tiny": 5e-324})
    extra = read_checkpoint(path)["extra"]
    assert math.isnan(extra["nan"]) and extra["inf"] == -math.inf and extra["tiny"] == 5e-324


# --------------------------------------------------------------------------------------------------------------
# Issue 10, defect 8: crafted or damaged files raise only CheckpointError, naming the file and the problem
# --------------------------------------------------------------------------------------------------------------
from checkpoint_fuzz import metadata_of, npy, npy_header, rezip, unzip, with_metadata  # noqa: E402


def _crafted(path, edit):
    """Rewrite the checkpoint at ``path`` with its metadata JSON edited by ``edit(meta)`` (valid CRCs)."""
    members = unzip(path.read_bytes())
    meta = metadata_of(members)
    edit(meta)
    path.write_bytes(rezip(with_metadata(members, json.dumps(meta).encode("utf-8"))))


def _saved(tmp_path, name="run.npz", seed=0):
    path = tmp_path / name
    model, opt, sched = trained(seed)
    save_checkpoint(path, model, opt, sched, epoch=4, extra={"history": [1.0, 2.0]})
    return path


@pytest.mark.parametrize("edit, message", [
    (lambda m: m.update(epoch="four"), "'epoch' must be an int or None, got 'four'"),
    (lambda m: m.update(epoch=True), "'epoch' must be an int or None, got True"),
    (lambda m: m.update(epoch=2.0), "'epoch' must be an int or None"),
    (lambda m: m.pop("model"), "lacks the entry 'model'"),
    (lambda m: m["optimizer"].pop("state"), "'optimizer' must have exactly the entries 'class' and 'state'"),
    (lambda m: m["optimizer"].update({"class": ["Adam"]}), "'class' must be a class name"),
    (lambda m: m.update(model=[1, 2]), "'model' must be a dict of arrays"),
    (lambda m: m["model"].update({"0.weight": 3}), "model entry '0.weight' must be an array, got 3"),
    (lambda m: m["model"]["0.weight"].update({"__array__": ["x"]}), "at 'model/0.weight' holds"),
    (lambda m: m["model"]["0.weight"].update({"__array__": "model/0.bias"}), "at 'model/0.weight' holds"),
    (lambda m: m.update(extra=json.loads("[" * 65 + "]" * 65)), "nested 66 deep"),
    (lambda m: m.pop("members"), "no 'members' table"),
    (lambda m: m["members"].pop("model/0.weight"), "do not match its metadata"),
    (lambda m: m["members"]["model/0.weight"].update(sha256="0" * 64), "'model/0.weight' does not match its "
                                                                       "recorded SHA-256"),
    (lambda m: m.update(version="1"), "format version '1'"),
])
def test_crafted_metadata_is_refused_with_a_clear_checkpoint_error(tmp_path, edit, message):
    path = _saved(tmp_path)
    _crafted(path, edit)
    model, opt, sched = trained(seed=1)
    before = dict(model.state_dict())
    with pytest.raises(CheckpointError, match=str(path)) as info:
        load_checkpoint(path, model, opt, sched)
    assert message in str(info.value)
    assert_same_state(before, dict(model.state_dict()))


def test_deep_or_non_utf8_or_duplicate_key_metadata_is_refused_without_recursion_error(tmp_path):
    path = _saved(tmp_path)
    members = unzip(path.read_bytes())
    text = json.dumps(metadata_of(members)).encode("utf-8")
    deep = b'{"extra": ' + b"[" * 100_000 + b"]" * 100_000 + b", " + text[1:]
    for blob, message in ((deep, "not valid JSON"), (b"\xff" + text, "not UTF-8"),
                          (text[:-1] + b', "epoch": 5}', "duplicate key 'epoch'"),
                          (b'{"format": "minibnn-checkpoint", "version": 1, "epoch": ' + b"9" * 5000 + b"}",
                           "not valid JSON")):
        path.write_bytes(rezip(with_metadata(members, blob)))
        with pytest.raises(CheckpointError, match=message):
            read_checkpoint(path)


def test_a_member_claiming_shape_2_to_the_40_is_refused_before_allocating(tmp_path):
    path = _saved(tmp_path)
    members = [(name, npy_header("{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776,), }",
                                 data[10 + int.from_bytes(data[8:10], "little"):])
                if name == "model/0.weight.npy" else data) for name, data in unzip(path.read_bytes())]
    path.write_bytes(rezip(members))
    with pytest.raises(CheckpointError, match=r"claims shape \(1099511627776,\) of float32 \(4398046511104 bytes\)"):
        read_checkpoint(path)


@pytest.mark.parametrize("header, message", [
    ("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", "never objects or pickles"),
    ("{'descr': '<f4', 'fortran_order': False, 'shape': (6, 4), 'x': __import__('os'), }", "malformed header"),
    ("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", "malformed header"),
])
def test_crafted_npy_headers_are_refused(tmp_path, header, message):
    path = _saved(tmp_path)
    members = [(name, npy_header(header, b"\0" * 96) if name == "model/0.weight.npy" else data)
               for name, data in unzip(path.read_bytes())]
    path.write_bytes(rezip(members))
    with pytest.raises(CheckpointError, match=message):
        read_checkpoint(path)


def test_arrays_swapped_in_from_another_checkpoint_of_the_same_architecture_are_refused(tmp_path):
    path, other = _saved(tmp_path, "a.npz", seed=0), _saved(tmp_path, "b.npz", seed=1)
    theirs = dict(unzip(other.read_bytes()))
    for member in ("model/0.weight.npy", "model/1.running_var.npy", "optimizer/state/0/exp_avg.npy"):
        members = [(name, theirs[name] if name == member else data) for name, data in unzip(_saved(
            tmp_path, "a.npz").read_bytes())]
        path.write_bytes(rezip(members))
        with pytest.raises(CheckpointError, match=f"'{member[:-4]}' does not match its recorded SHA-256"):
            load_checkpoint(path, make_model())


def test_two_same_shape_arrays_swapped_inside_one_file_are_refused(tmp_path):
    path = _saved(tmp_path)
    members = dict(unzip(path.read_bytes()))
    a, b = "model/1.running_mean.npy", "model/1.running_var.npy"
    assert members[a][:128] == members[b][:128] and members[a] != members[b]   # same header, other values
    swapped_data = [(n, members[b] if n == a else members[a] if n == b else d) for n, d in members.items()]
    renamed = [(b if n == a else a if n == b else n, d) for n, d in members.items()]
    for crafted in (swapped_data, renamed):
        path.write_bytes(rezip(crafted))
        with pytest.raises(CheckpointError, match="does not match its recorded SHA-256"):
            load_checkpoint(path, make_model())


def test_files_are_plain_npz_readable_by_numpy_and_deflated_copies_still_load(tmp_path):
    path = _saved(tmp_path)
    with np.load(path, allow_pickle=False) as archive:
        meta = json.loads(archive["__metadata__"].tobytes())
        assert meta["members"]["model/0.weight"]["shape"] == [6, 4]
        assert len(meta["members"]["model/0.weight"]["sha256"]) == 64
    path.write_bytes(rezip(unzip(path.read_bytes()), zipfile.ZIP_DEFLATED))
    model = make_model(seed=9)
    assert load_checkpoint(path, model)["epoch"] == 4
    assert_same_state(dict(trained(0)[0].state_dict()), dict(model.state_dict()))


def test_an_extra_array_the_metadata_does_not_use_is_refused(tmp_path):
    path = _saved(tmp_path)
    members = unzip(path.read_bytes()) + [("model/2.weight.npy", npy(np.zeros(3, np.float32)))]
    path.write_bytes(rezip(members))
    with pytest.raises(CheckpointError, match=r"unlisted \['model/2.weight'\]"):
        read_checkpoint(path)


def test_model_arguments_are_checked(tmp_path):
    path = _saved(tmp_path)
    with pytest.raises(TypeError, match="load_checkpoint: model must be a minibnn Module, got None"):
        load_checkpoint(path, None)
    with pytest.raises(TypeError, match="save_checkpoint: model must be a minibnn Module, got 3"):
        save_checkpoint(path, 3)
