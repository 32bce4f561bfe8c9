"""deploy.load against corrupted and crafted files (issue 10, defect 7): DeployLoadError naming the file, or a
model that runs correctly -- see tests/deploy_fuzz.py (the long run: ``python tests/deploy_fuzz.py --cases 5000``).
"""
from __future__ import annotations

import numpy as np
import pytest

import deploy_fuzz
from minibnn import deploy, models
from minibnn.archive import write_archive


def test_fuzzed_packed_models_are_refused_or_run_correctly(tmp_path):
    counts, failures = deploy_fuzz.run(240, seed=2026, folder=str(tmp_path), verbose=False)
    assert failures == []
    assert sum(c["refused"] for c in counts.values()) > 100
    assert counts["values"]["loaded"] > 0


@pytest.fixture(scope="module")
def lenet(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lenet")
    return deploy_fuzz.Original(str(folder), "lenet")


def _save(tmp_path, meta, arrays):
    path = tmp_path / "m.npz"
    write_archive(path, arrays, meta, format=deploy.FORMAT, version=deploy.VERSION)
    return path


def test_a_weight_with_a_padding_bit_set_is_refused(tmp_path, lenet):
    meta, arrays = lenet.parts()
    dense = next(i for i, s in enumerate(meta["stages"]) if s["kind"] == "binary_dense")
    assert meta["stages"][dense]["config"]["words_k"] == 64                # 8 channels in a 64-bit pixel word
    arrays[f"{dense}/weight"][0, 0] |= np.uint64(1) << np.uint64(40)
    with pytest.raises(deploy.DeployLoadError, match=r"m\.npz.*padding bits"):
        deploy.load(_save(tmp_path, meta, arrays))
    meta, arrays = lenet.parts()
    conv = next(i for i, s in enumerate(meta["stages"]) if s["kind"] == "binary_conv")
    arrays[f"{conv}/weight"][1, 2, 3, 0] |= np.uint64(1) << np.uint64(63)
    with pytest.raises(deploy.DeployLoadError, match="padding bits"):
        deploy.load(_save(tmp_path, meta, arrays))


@pytest.mark.parametrize("change, message", [
    (lambda m, a, i: a.__setitem__(f"{i}/threshold", np.full_like(a[f"{i}/threshold"], 10 ** 6)), "outside"),
    (lambda m, a, i: a.__setitem__(f"{i}/direction", np.zeros_like(a[f"{i}/direction"])), "direction"),
    (lambda m, a, i: a.__setitem__(f"{i}/weight", a[f"{i}/weight"].astype(np.int64)), "dtype int64"),
    (lambda m, a, i: a.__setitem__(f"{i}/weight", a[f"{i}/weight"][:, :0]), "empty|words"),
    (lambda m, a, i: m["stages"][i]["config"].__setitem__("channels", "3"), "must be an int"),
    (lambda m, a, i: m["stages"][i]["config"].__setitem__("stride", [2 ** 62, 1]), "stride"),
    (lambda m, a, i: m["stages"][i]["config"].__setitem__("pad_value", 2), "pad_value"),
    (lambda m, a, i: m["stages"][i]["config"].__setitem__("extra", 1), "unknown keys"),
    (lambda m, a, i: m.__setitem__("stages", "x"), "stages"),
    (lambda m, a, i: m.__setitem__("input_shape", [2, 14, 14]), "must match the channels"),
])
def test_crafted_conv_stage_entries_are_refused_with_the_file_name(tmp_path, lenet, change, message):
    meta, arrays = lenet.parts()
    conv = next(i for i, s in enumerate(meta["stages"]) if s["kind"] == "binary_conv")
    change(meta, arrays, conv)
    with pytest.raises(deploy.DeployLoadError, match=message) as info:
        deploy.load(_save(tmp_path, meta, arrays))
    assert "m.npz" in str(info.value)


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_files_raise_only_deploy_load_error(tmp_path, lenet, damage):
    rng = np.random.default_rng(0)
    blob = lenet.blobs[0]
    for j in range(30):
        bad = blob[:int(rng.integers(len(blob)))] if damage == "truncate" else bytes(
            b ^ (0xFF if i == int(rng.integers(len(blob))) else 0) for i, b in enumerate(blob))
        (tmp_path / "d.npz").write_bytes(bad)
        try:
            model = deploy.load(tmp_path / "d.npz")
        except deploy.DeployLoadError as err:
            assert "d.npz" in str(err)
        else:
            assert model(lenet.x).tobytes() == lenet.outputs.tobytes()


def test_an_empty_batch_gives_zero_rows_of_classes(tmp_path):
    packed = deploy.freeze(models.lenet5(image_size=14, width=0.5, rng=np.random.default_rng(0)), (1, 14, 14))
    out = packed(np.zeros((0, 1, 14, 14), np.float32))
    assert out.shape == (0, 10) and out.dtype == packed(np.zeros((1, 1, 14, 14), np.float32)).dtype
    packed.save(tmp_path / "m.npz")
    assert deploy.load(tmp_path / "m.npz")(np.zeros((0, 1, 14, 14), np.float32)).shape == (0, 10)
