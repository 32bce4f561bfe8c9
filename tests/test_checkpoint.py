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
