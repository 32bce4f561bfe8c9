"""The hypothesis strategies every test shares: shapes, broadcastable pairs and float64 arrays.

Values are drawn away from kinks and poles by shifting, not filtering (as MiniTorch does): a test of log
uses ``positive_arrays``, a test of relu adds an offset that keeps inputs off zero.
"""
from __future__ import annotations

import numpy as np
from hypothesis import Phase, settings, strategies as st
from hypothesis.extra import numpy as hnp

# No "explain" phase: it costs seconds per failing test and a failing CI run should stay short.
settings.register_profile("minibnn", deadline=None, max_examples=25,
                          phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink])
settings.load_profile("minibnn")

#: the cost tiers for @settings(max_examples=...): cheap elementwise checks, full Jacobians, trainings.
CHEAP, MEDIUM, COSTLY = 40, 15, 5


def shapes(min_dims: int = 1, max_dims: int = 3, min_side: int = 1, max_side: int = 4):
    """Small array shapes, including size-1 axes (batch 1)."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def arrays(shape, low: float = -3.0, high: float = 3.0, dtype=np.float64, allow_subnormal: bool = True):
    """Float arrays of ``shape`` (a tuple or a strategy) with values in [low, high] (``allow_subnormal=False``
    for properties that scale values, where a subnormal can round to zero)."""
    extra = {} if allow_subnormal else {"allow_subnormal": False}
    return hnp.arrays(dtype, shape, elements=st.floats(low, high, allow_nan=False, allow_infinity=False,
                                                        width=64 if dtype == np.float64 else 32, **extra))


def positive_arrays(shape, low: float = 0.5, high: float = 3.0):
    """Arrays bounded away from zero (for log, sqrt, division)."""
    return arrays(shape, low, high)


@st.composite
def broadcastable_pair(draw, max_dims: int = 3, max_side: int = 4, low: float = -3.0, high: float = 3.0):
    """Two float64 arrays whose shapes broadcast together (one may have fewer or stretched axes)."""
    shape_a, shape_b = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=max_dims,
                                                              max_side=max_side)).input_shapes
    return draw(arrays(shape_a, low, high)), draw(arrays(shape_b, low, high))


@st.composite
def separated(draw, shape, gap: float = 1e-3, low: float = -3.0, high: float = 3.0):
    """An array whose values are pairwise at least ``gap`` apart (so max/argmax have no ties)."""
    n = int(np.prod(shape))
    perm = draw(st.permutations(list(range(n))))
    values = np.linspace(low, high, max(n, 1))[np.array(perm, dtype=int)] if n else np.zeros(0)
    jitter = draw(arrays((n,), -0.3, 0.3)) * (high - low) / max(n, 1)
    return (values + jitter).reshape(shape)


def non_contiguous(array: np.ndarray) -> np.ndarray:
    """The same values as ``array`` in a non-contiguous view (every other element of a bigger array)."""
    big = np.empty(array.shape[:-1] + (2 * array.shape[-1],) if array.ndim else (2,), dtype=array.dtype)
    view = big[..., ::2] if array.ndim else big[:1].reshape(())
    view[...] = array
    return view


@st.composite
def arrays_with(draw, shape, specials=(0.0,), low: float = -3.0, high: float = 3.0):
    """Float64 arrays of ``shape`` (a tuple or a strategy) in [low, high] that contain the ``specials``.

    For the quantizers' exact cases: pass the zeros and clip edges (``specials=(0.0, -0.0, 1.0, -1.0)``) and each
    one lands at a drawn position (as many as fit), other entries are drawn from the specials or the interval.
    """
    shape = shape if isinstance(shape, tuple) else draw(shape)
    specials = [float(s) for s in specials]
    element = st.one_of(st.sampled_from(specials), st.floats(low, high, allow_nan=False, allow_infinity=False))
    out = draw(hnp.arrays(np.float64, shape, elements=element))
    n = out.size
    if n:
        positions = draw(st.permutations(list(range(n))))[:len(specials)]
        out.reshape(-1)[positions] = specials[:len(positions)]
    return out
