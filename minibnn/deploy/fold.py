"""Folding: what a model does to a binary layer's input, from a dot product or a float, into one comparison.

Between two binary layers, everything the model does to a dot product s ∈ {-K, ..., K} -- the layer's scale α
and bias, a BatchNorm (or any norm of :mod:`minibnn.normalization`), activations, the next layer's sign -- is a
monotone step of the integer s per channel, so it is **one integer comparison**: +1 iff s >= t (or s <= t where
the norm's γ is negative). This is Sari et al. 2019, eq. 2, sign(BN(s)) = +1 iff s >= ⌈μ - σβ/γ⌉ (corrected as
in :func:`minibnn.theory.fold_bn_sign`: ceil, not round, and ``<=`` ⌊·⌋ for γ < 0). Here the threshold is not
computed from the formula but *found* on the float32 arithmetic the model itself runs: every s in [-K, K] goes
through the model's own modules (:func:`chain_thresholds`), so it agrees with the float model even where float32
rounding puts BN(s) within an ulp of 0.

Where float activations enter a binary layer, the same idea gives a float comparison ``x >= τ_c`` per channel;
τ_c is found by bisection over the 2^32 float32 values in order (:func:`input_threshold`).

Example:
    >>> import numpy as np
    >>> from minibnn import quantizers
    >>> from minibnn.layers import BatchNorm1d
    >>> bn = BatchNorm1d(2).eval()
    >>> bn.running_mean[:] = [0.5, 0.0]; bn.weight.data[:] = [1.0, -1.0]
    >>> tau, negate, nan_plus = input_threshold([("bn", bn)], quantizers.get("ste_sign"), (2,), "q")
    >>> tau.tolist(), negate.tolist()                 # channel 0: x >= 0.5; channel 1: -x >= -0.0
    ([0.5, -0.0], [False, True])
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np

from ..tensor import Tensor


class FreezeError(ValueError):
    """The model has a layer or an arrangement that :func:`minibnn.deploy.freeze` cannot pack (the message
    names it)."""


def apply_modules(modules, v: np.ndarray, where: str) -> np.ndarray:
    """Run the float32 array `v` through the (name, module) pairs in order, as the model does."""
    for name, m in modules:
        try:
            v = m(Tensor(v)).data
        except Exception as exc:   # noqa: BLE001
            raise FreezeError(f"freeze: layer {name} ({type(m).__name__}) {where} could not be evaluated per "
                              f"channel ({exc})") from exc
    return v


def monotone(table: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(non-decreasing, non-increasing) per column of a table whose rows follow s = -K..K."""
    d = np.diff(table, axis=0)
    return np.all(d >= 0, axis=0), np.all(d <= 0, axis=0)


# ---- a float input: bisection over the float32 values -------------------------------------------------------------

def _float32_keys(v: np.ndarray) -> np.ndarray:
    """float32 -> int64 keys in the same order (-0.0 just below +0.0): bisection over every float32 value."""
    bits = np.ascontiguousarray(v, dtype=np.float32).view(np.int32).astype(np.int64)
    return np.where(bits >= 0, bits, -(bits & 0x7FFFFFFF) - 1)


def _float32_values(keys: np.ndarray) -> np.ndarray:
    bits = np.where(keys >= 0, keys, (-keys - 1) | 0x80000000)
    return bits.astype(np.uint32).view(np.float32)


_PROBES = np.array([-np.inf, -3.4e38, -1e6, -10.0, -1.0, -1e-3, -1e-30, -1e-45, -0.0, 0.0, 1e-45, 1e-30, 1e-3, 1.0,
                    10.0, 1e6, 3.4e38, np.inf], dtype=np.float32)


def input_threshold(modules, q, shape: Tuple[int, ...], where: str
                    ) -> Optional[Tuple[np.ndarray, Optional[np.ndarray], bool]]:
    """(τ (C,) float32, negate (C,) bool or None, nan_plus) such that, for every float32 x of channel c,
    ``q(modules(x)) = +1  iff  x >= τ_c`` (``-x >= -τ_c`` where negate), and NaN gives +1 iff ``nan_plus``;
    channel c on axis 1 of ``shape``. None if no such threshold exists (a map that is not monotone, NaN mapped
    to +1 in some channels and -1 in others, an error).

    The step is found by bisection over the 2^32 float32 values in order (33 evaluations of the model's own
    modules on one value per channel), then checked on a few hundred more values."""
    channels, spatial = shape[0], len(shape) == 3

    def plus(values: np.ndarray) -> np.ndarray:            # values (S, C) -> (S, C) bool: +1 after q?
        v = values.astype(np.float32).reshape(values.shape + ((1, 1) if spatial else ()))
        v = apply_modules(list(modules) + [(where, q)], v, "")
        y = v.reshape(len(values), -1)
        if y.shape[1] != channels or not np.all((y == 1) | (y == -1)):
            raise FreezeError(f"freeze: {where} does not give ±1 per channel")
        return y == 1

    try:
        with np.errstate(all="ignore"):                   # ±inf and 3.4e38 probes overflow on purpose
            return _bisect(plus, channels)
    except FreezeError:
        return None


def _bisect(plus, channels: int) -> Optional[Tuple[np.ndarray, Optional[np.ndarray], bool]]:
    """The bisection and its checks for :func:`input_threshold`; ``plus(values (S, C)) -> (S, C) bool``."""
    at_low, at_high = plus(np.array([[-np.inf], [np.inf]], dtype=np.float32).repeat(channels, axis=1))
    lo = np.full(channels, _float32_keys(np.float32(-np.inf)))
    hi = np.full(channels, _float32_keys(np.float32(np.inf)))
    while np.any(hi - lo > 1):                        # invariant: plus(lo) == at_low, plus(hi) == at_high
        mid = (lo + hi) // 2
        same = plus(_float32_values(mid)[None, :])[0] == at_low
        lo, hi = np.where(same, mid, lo), np.where(same, hi, mid)
    rising, falling = ~at_low & at_high, at_low & ~at_high
    threshold = np.where(rising, _float32_values(hi), np.where(falling, -_float32_values(lo),
                                                               np.where(at_low, -np.inf, np.nan)))
    threshold = threshold.astype(np.float32)
    negate = falling if falling.any() else None
    rng = np.random.default_rng(0)
    checks = np.concatenate([
        np.repeat(_PROBES[:, None], channels, axis=1),
        np.stack([_float32_values(k) for k in (lo - 1, lo, hi, hi + 1)]),
        (rng.standard_normal((300, 1)) * np.logspace(-3, 3, 300)[:, None]).repeat(channels, axis=1),
    ]).astype(np.float32)
    sign = np.where(falling, np.float32(-1), np.float32(1)) if negate is not None else np.float32(1)
    if not np.array_equal(plus(checks), checks * sign >= threshold):
        return None
    nan = plus(np.full((1, channels), np.nan, dtype=np.float32))[0]
    if nan.any() and not nan.all():
        return None                                   # NaN is one bit for the whole stage
    return threshold, negate, bool(nan.all())


# ---- between two binary layers: every integer dot product ---------------------------------------------------------

class Chain:
    """What lies between binary layer A and binary layer B, to be folded into thresholds of A's output.

    pre: (name, module) per-channel maps before a max-pool; pool: the max-pool or None; post: the maps after it
    (the whole chain when there is no pool), then B's input quantizer; flatten: a Flatten (A conv, B dense)
    somewhere after the pool, or None."""

    def __init__(self, pre: List, pool, post: List, flatten):
        self.pre, self.pool, self.post, self.flatten = pre, pool, post, flatten


def chain_thresholds(chain: Chain, q, names: Tuple[str, str], alpha, bias, k: int, channels: int, spatial: bool):
    """(thresholds int32, directions int8, channels to min-pool bool or None) of A's outputs.

    Every integer s in [-K, K] runs through what the model does to it: g(s) = float32(s)·|α| + b (A's output),
    the chain's modules, B's input quantizer ``q``. The ±1 result is a monotone step in s per channel; its step
    is the threshold. ``names`` are A's and B's, for messages; ``spatial`` is True when A is a convolution."""
    name_a, name_b = names
    between = f"between {name_a} and {name_b}"
    spatial_shape = (1, 1) if spatial else ()
    s_all = np.arange(-k, k + 1)
    plus = np.empty((len(s_all), channels), dtype=bool)
    pre_up = np.ones(channels, bool)
    pre_down = np.ones(channels, bool)
    last_pre = None
    rows = max(1, (1 << 22) // max(1, channels))
    for start in range(0, len(s_all), rows):
        v = np.repeat(s_all[start:start + rows, None].astype(np.float32), channels, axis=1)
        if alpha is not None:
            v = v * alpha
        if bias is not None:
            v = v + bias
        v = apply_modules(chain.pre, v.reshape(v.shape + spatial_shape), between)
        if chain.pool is not None:     # direction of the pooled quantity, s -> pre(g(s)), per channel
            flat = v.reshape(len(v), channels)
            up, down = monotone(flat if last_pre is None else np.concatenate([last_pre, flat]))
            pre_up &= up
            pre_down &= down
            last_pre = flat[-1:]
        v = apply_modules(chain.post, v, between)
        if chain.flatten is not None:
            v = v.reshape(len(v), channels)
        y = apply_modules([(f"{name_b}.input_quantizer", q)], v, "").reshape(len(v), channels)
        if not np.all((y == 1) | (y == -1)):
            raise FreezeError(f"freeze: the input quantizer of {name_b} does not output ±1 on the outputs of "
                              f"{name_a}; only binary activations can be packed")
        plus[start:start + rows] = y == 1
    up, down = monotone(plus.astype(np.int8))
    bad = ~(up | down)
    if bad.any():
        raise FreezeError(f"freeze: {between}, sign(...) of channel {int(np.argmax(bad))} is not a monotone "
                          f"function of the dot product, so it is no threshold")
    if chain.pool is not None and not np.all(pre_up | pre_down):
        raise FreezeError(f"freeze: before the max-pool after {name_a}, channel {int(np.argmax(~(pre_up | pre_down)))}"
                          f" is not a monotone function of the dot product; the pool cannot run on bits")
    n_plus = plus.sum(axis=0)
    # non-decreasing step (constant included): +1 iff s >= -K + (number of -1s); else +1 iff s <= -K + n_plus - 1
    threshold = np.where(up, -k + (len(s_all) - n_plus), -k + n_plus - 1).astype(np.int64)
    direction = np.where(up, 1, -1).astype(np.int8)
    flip = None
    if chain.pool is not None:
        # max-pool then an increasing step = max of the steps (AND of bits); a step decreasing relative to
        # the pooled quantity = min of the steps: emit its complement, AND-pool it, flip it back
        constant = up & down
        flip = ~constant & ((up & ~pre_up) | (down & ~pre_down))
        threshold = np.where(flip, np.where(direction > 0, threshold - 1, threshold + 1), threshold)
        direction = np.where(flip, -direction, direction).astype(np.int8)
    return threshold.astype(np.int32), direction, flip
