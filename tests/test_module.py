"""Module, Parameter, Sequential: registration, modes, state_dict round trips, hooks, printing, errors."""
import numpy as np
import pytest

from minibnn import Module, ModuleList, Parameter, Sequential, Tensor
from minibnn.layers import BatchNorm1d, Linear, ReLU


class Affine(Module):
    def __init__(self, n):
        super().__init__()
        self.scale = Parameter(np.ones(n, dtype=np.float32))
        self.register_buffer("calls", np.zeros(1, dtype=np.float32))

    def forward(self, x):
        self.calls = self.calls + 1
        return x * self.scale


def test_parameters_buffers_and_names_are_found_recursively():
    model = Sequential(Affine(3), Sequential(Affine(3), ReLU()))
    assert [n for n, _ in model.named_parameters()] == ["0.scale", "1.0.scale"]
    assert [n for n, _ in model.named_buffers()] == ["0.calls", "1.0.calls"]
    model(Tensor(np.ones((2, 3), dtype=np.float32)))
    assert model[1][0].calls[0] == 1  # a reassigned buffer stays a buffer
    assert "1.0.calls" in model.state_dict()


def test_shared_parameter_is_listed_once():
    a = Affine(2)
    model = Sequential(a, a)
    assert len(model.parameters()) == 1


def test_train_eval_reach_every_submodule():
    model = Sequential(Linear(2, 2), Sequential(BatchNorm1d(2)))
    model.eval()
    assert all(not m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())


def test_state_dict_round_trip_is_bit_exact_and_a_copy():
    src = Sequential(Linear(4, 3, rng=np.random.default_rng(1)), BatchNorm1d(3))
    src(Tensor(np.random.default_rng(2).normal(size=(5, 4)).astype(np.float32)))  # moves running stats
    state = src.state_dict()
    dst = Sequential(Linear(4, 3, rng=np.random.default_rng(9)), BatchNorm1d(3))
    dst.load_state_dict(state)
    for (name, a), b in zip(dst.state_dict().items(), state.values()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    state["0.weight"][...] = 0  # the state dict is a copy: editing it leaves the model alone
    assert np.any(src[0].weight.data != 0)


def test_load_state_dict_errors_name_the_key_and_shapes():
    model = Sequential(Linear(4, 3))
    state = model.state_dict()
    with pytest.raises(KeyError, match="missing keys \\['0.bias'\\]"):
        model.load_state_dict({"0.weight": state["0.weight"]})
    with pytest.raises(ValueError, match=r"'0.weight' has shape \(3, 5\), expected \(3, 4\)"):
        model.load_state_dict({**state, "0.weight": np.zeros((3, 5))})
    model.load_state_dict({"0.weight": state["0.weight"]}, strict=False)


def test_assigning_a_plain_tensor_over_a_parameter_is_an_error():
    layer = Linear(2, 2)
    with pytest.raises(TypeError, match="Linear.weight is a Parameter"):
        layer.weight = layer.weight * 2.0


def test_register_buffer_requires_an_array():
    m = Module()
    with pytest.raises(TypeError, match="expected a NumPy array"):
        m.register_buffer("x", None)


def test_forward_hook_sees_output_and_can_be_removed():
    layer = Linear(2, 2)
    seen = []
    remove = layer.register_forward_hook(lambda mod, inputs, out: seen.append(out.shape))
    layer(Tensor(np.ones((3, 2), dtype=np.float32)))
    remove()
    layer(Tensor(np.ones((3, 2), dtype=np.float32)))
    assert seen == [(3, 2)]


def test_repr_is_a_readable_tree():
    text = repr(Sequential(Linear(784, 10), ReLU()))
    assert text.splitlines()[0] == "Sequential("
    assert "(0): Linear(in_features=784, out_features=10" in text and "(1): ReLU()" in text


def test_module_list_and_sequential_reject_non_modules():
    with pytest.raises(TypeError, match="expected a Module, got int"):
        Sequential(3)
    with pytest.raises(TypeError, match="expected a Module"):
        ModuleList([Linear(1, 1), "x"])


def test_astype_float64_converts_parameters_and_buffers():
    model = Sequential(Linear(2, 2), BatchNorm1d(2)).astype(np.float64)
    assert all(p.dtype == np.float64 for p in model.parameters())
    assert model[1].running_mean.dtype == np.float64


def test_super_init_must_come_first():
    class Broken(Module):
        def __init__(self):
            self.w = Parameter(np.ones(1))

    with pytest.raises(RuntimeError, match="super\\(\\).__init__\\(\\)"):
        Broken()


def test_import_minibnn_exposes_every_concept_as_a_submodule():
    import minibnn as mb

    assert mb.layers.Linear and mb.optim.Adam and mb.quantizers.get("ste_sign") and mb.training.fit
    assert mb.Tensor is mb.tensor.Tensor and mb.data.DataLoader and mb.models.bnn_mlp
