"""Weight scales: XNOR-Net's mean|W| (differentiable) and BNN+'s α initialised to the R1/R2 minimisers."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minibnn import Parameter, Tensor, gradcheck
from minibnn import scales
from strategies import CHEAP, MEDIUM, arrays

WEIGHT_SHAPES = st.sampled_from([(1, 1), (3, 4), (2, 5), (4, 2, 3, 3), (2, 1, 1, 2), (3, 3, 2, 1)])


def per_filter(w, reduce):
    return np.array([reduce(np.abs(w[c]).ravel()) for c in range(w.shape[0])])


@settings(max_examples=CHEAP)
@given(data=st.data())
def test_init_alpha_is_median_or_mean_of_abs_per_output_filter(data):
    w = data.draw(arrays(data.draw(WEIGHT_SHAPES)))
    for method, reduce in [("median", np.median), ("r1", np.median), ("mean", np.mean), ("r2", np.mean)]:
        alpha = scales.init_alpha(Parameter(w), method)
        assert isinstance(alpha, Parameter) and alpha.shape == (w.shape[0],) and alpha.dtype == np.float64
        np.testing.assert_allclose(alpha.data, per_filter(w, reduce), rtol=1e-12, atol=1e-15)
    assert scales.init_alpha(Parameter(w.astype(np.float32))).dtype == np.float32


@settings(max_examples=MEDIUM)
@given(data=st.data())
def test_initial_alpha_minimises_r1_and_r2_on_a_grid(data):
    # Darabi et al. 2018, eqs. 7-9: median|W_c| minimises Σ|α - |w||, mean|W_c| minimises Σ(α - |w|)²
    w = data.draw(arrays(data.draw(WEIGHT_SHAPES)))
    grid = np.linspace(0, 3, 3001)  # every |w| lies in [0, 3]
    a = np.abs(w).reshape(w.shape[0], -1)
    r1 = np.abs(grid[None, :, None] - a[:, None, :]).sum(axis=2)  # (out, grid)
    r2 = ((grid[None, :, None] - a[:, None, :]) ** 2).sum(axis=2)
    median, mean = scales.median_abs(w), scales.mean_abs(w)
    r1_at_median = np.abs(median[:, None] - a).sum(axis=1)
    r2_at_mean = ((mean[:, None] - a) ** 2).sum(axis=1)
    assert np.all(r1_at_median <= r1.min(axis=1) + 1e-9)
    assert np.all(r2_at_mean <= r2.min(axis=1) + 1e-9)
    # and the grid minimiser is within one grid step of the closed form (R2's minimum is unique)
    np.testing.assert_allclose(grid[r2.argmin(axis=1)], mean, atol=1e-3)


@settings(max_examples=MEDIUM)
@given(data=st.data())
def test_xnor_scale_values_and_gradcheck(data):
    shape = data.draw(st.sampled_from([(2, 3), (3, 2, 2, 1), (1, 4)]))
    w = data.draw(arrays(shape))
    w = np.where(w >= 0, w + 0.1, w - 0.1)  # move off |w|'s kink at 0
    out = scales.xnor_scale(Tensor(w))
    assert out.shape == (shape[0],) + (1,) * (len(shape) - 1)
    np.testing.assert_allclose(out.data.ravel(), per_filter(w, np.mean), rtol=1e-12)
    assert gradcheck(scales.xnor_scale, w)
    # the scale passes a gradient to the weights: d(Σ_c α_c)/dW_ci = sign(W_ci)/n_c, n_c = entries per filter
    t = Tensor(w, requires_grad=True)
    scales.xnor_scale(t).sum().backward()
    np.testing.assert_allclose(t.grad, np.sign(w) / np.prod(shape[1:]), rtol=1e-12)


@settings(max_examples=MEDIUM)
@given(data=st.data())
def test_scale_filters_multiplies_each_output_filter_and_gradchecks(data):
    shape = data.draw(st.sampled_from([(2, 3), (3, 2, 2, 1)]))
    w, alpha = data.draw(arrays(shape)), data.draw(arrays((shape[0],), 0.1, 2.0))
    out = scales.scale_filters(Tensor(w), Tensor(alpha)).data
    for c in range(shape[0]):
        np.testing.assert_allclose(out[c], alpha[c] * w[c], rtol=1e-12)
    assert gradcheck(scales.scale_filters, w, alpha)


def test_bad_shapes_get_clear_errors():
    with pytest.raises(ValueError, match=r"expected a weight of shape \(out, in\).*got shape \(5,\)"):
        scales.init_alpha(Tensor(np.ones(5)))
    with pytest.raises(ValueError, match="method must be one of"):
        scales.init_alpha(Tensor(np.ones((2, 2))), "mode")
    with pytest.raises(ValueError, match=r"alpha must have shape \(3,\).*got \(2,\)"):
        scales.scale_filters(Tensor(np.ones((3, 4))), Tensor(np.ones(2)))
