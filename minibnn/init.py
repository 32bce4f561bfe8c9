"""Initializers: how a layer's weights and biases get their first values.

Every initializer is a callable ``init(shape, rng, dtype=np.float32) -> np.ndarray`` that fills an array of
``shape`` with iid draws from one exact law (a constant, a uniform or a normal), and tells you that law:

    init.distribution(shape)  -> Distribution(kind, mean, var)    the exact law of every entry
    init.moments(shape)       -> (mean, variance)                 its theoretical mean and variance

so a test, a tutorial or a student can compare the numbers a layer actually got with the formula.

Fan-scaled laws (Glorot, He, LeCun) shrink the weights as layers grow, to keep the variance of activations and
gradients near 1 (see ``fans`` for how fan_in and fan_out are read from a shape). Binary networks need less:
``sign(w)`` forgets the scale, and with BatchNorm any zero-mean symmetric law trains as well, so Sari et al. 2019
use the same variance in every layer (``ConstantVariance``); Li & Partovi Nia add random biases
(``RandomBias``) so that htanh/STE units see more diverse data.

Names accepted by ``get`` (aliases in brackets):

    zeros, ones, constant, uniform, normal, small_constant,
    glorot_uniform [xavier_uniform], glorot_normal [xavier_normal],
    he_uniform [kaiming_uniform], he_normal [kaiming_normal], lecun_uniform, lecun_normal,
    constant_variance, random_bias

Example:
    >>> import numpy as np
    >>> from minibnn import init
    >>> rng = np.random.default_rng(0)
    >>> w = init.get("glorot_uniform")((10, 784), rng)     # a Linear(784 -> 10) weight
    >>> w.shape, w.dtype
    ((10, 784), dtype('float32'))
    >>> b = init.get("random_bias", lam=2.0)((10,), rng)    # its bias
    >>> bool(np.all(np.abs(b) <= 2.0))
    True

Plain NumPy: from the rest of minibnn it uses only the name registry and the argument checks. An initializer
is any function ``init(shape, rng, dtype)``; the ones below are tiny classes (their options as attributes, one
``distribution(shape)`` method giving the law) so that their law can be asked for.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Callable, NamedTuple, Tuple, Union

import numpy as np

from . import _checks
from .registry import Registry

__all__ = [
    "fans", "gain_for", "Distribution", "Initializer",
    "Constant", "Zeros", "Ones", "SmallConstant", "Uniform", "Normal",
    "GlorotUniform", "GlorotNormal", "HeUniform", "HeNormal", "LeCunUniform", "LeCunNormal",
    "ConstantVariance", "RandomBias",
    "zeros", "ones", "get", "names",
]

Shape = Tuple[int, ...]


def _weight_shape(who: str, shape: Any) -> Shape:
    """``shape`` as a tuple of ints >= 1 (a weight has at least one axis and no empty one), or a clear error."""
    expected = "a non-empty tuple of positive ints, e.g. (out_features, in_features) or (out_ch, in_ch, kh, kw)"
    if not isinstance(shape, (tuple, list)) or not all(
        isinstance(d, numbers.Integral) and not isinstance(d, bool) for d in shape
    ):
        raise TypeError(f"{who}: shape must be {expected}; got {shape!r} ({type(shape).__name__})")
    if len(shape) == 0 or any(d <= 0 for d in shape):
        raise ValueError(f"{who}: shape must be {expected}; got {tuple(shape)!r}")
    return tuple(int(d) for d in shape)


# ------------------------------------------------------------------------------------------------ fans and gains
def fans(shape: Shape) -> Tuple[int, int]:
    """(fan_in, fan_out) of a weight of ``shape``: the convention every fan-scaled initializer here uses.

    ==================================  ==================  ===================
    shape                               fan_in              fan_out
    ==================================  ==================  ===================
    (n,)  a bias or a 1-D scale         n                   n
    (out_features, in_features)         in_features         out_features
    (out_ch, in_ch, k1, ..., kd)        in_ch * k1...kd     out_ch * k1...kd
    ==================================  ==================  ===================

    A convolution output sums over in_ch * kh * kw inputs (its fan_in); in the backward pass each input
    gradient sums over out_ch * kh * kw outputs (its fan_out). Linear weights are (out, in), as in ``x @ W.T``.

    Example:
        >>> fans((10, 784))          # Linear(784 -> 10)
        (784, 10)
        >>> fans((64, 3, 3, 3))      # Conv2d(3 -> 64, 3x3)
        (27, 576)
        >>> fans((10,))              # a bias
        (10, 10)
    """
    shape = _weight_shape("fans", shape)
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


_GAINS = ("linear", "relu", "leaky_relu")


def gain_for(nonlinearity: str, negative_slope: float = 0.0) -> float:
    """The gain g that keeps activation variance constant through ``nonlinearity`` (He et al. 2015, Sec. 2.2).

    Weights with variance g^2 / fan keep Var(activation) steady: for an odd-symmetric input, ReLU passes half of
    the second moment, so g^2 = 2; leaky ReLU with slope s passes (1 + s^2)/2 of it, so g^2 = 2 / (1 + s^2);
    the identity (the linear regime of htanh, the STE of a binary network) passes all of it, so g = 1.

        linear      g = 1
        relu        g = sqrt(2)
        leaky_relu  g = sqrt(2 / (1 + negative_slope^2))

    Example:
        >>> gain_for("relu") == 2 ** 0.5
        True
        >>> round(gain_for("leaky_relu", negative_slope=0.2), 4)
        1.3868
    """
    return math.sqrt(_gain_squared(nonlinearity, negative_slope, "gain_for"))


def _gain_squared(nonlinearity: str, negative_slope: float, who: str) -> float:
    """g^2 of ``gain_for``, exact (so that He variances such as 2 / fan_in carry no rounding from a sqrt)."""
    _checks.choice(who, "nonlinearity", nonlinearity, _GAINS)
    s = _checks.real(who, "negative_slope", negative_slope)
    if s != 0.0 and nonlinearity != "leaky_relu":
        raise ValueError(f"{who}: negative_slope={s!r} only applies to nonlinearity='leaky_relu'; "
                         f"got nonlinearity={nonlinearity!r}")
    return {"linear": 1.0, "relu": 2.0, "leaky_relu": 2.0 / (1.0 + s * s)}[nonlinearity]


# ------------------------------------------------------------------------------------------- laws and the base
class Distribution(NamedTuple):
    """The exact law of every entry an initializer draws (entries are iid), given by its mean and variance.

    kind "constant": every entry equals mean (var is 0).
    kind "uniform":  U[low, high] with low, high = mean -/+ sqrt(3 var)  (a uniform of half-width h has
                     variance h^2 / 3).
    kind "normal":   N(mean, var), standard deviation std = sqrt(var).

    Example:
        >>> d = Distribution("uniform", 0.0, 3.0)
        >>> d.moments(), (d.low, d.high)
        ((0.0, 3.0), (-3.0, 3.0))
    """

    kind: str
    mean: float
    var: float

    @property
    def std(self) -> float:
        return math.sqrt(self.var)

    @property
    def low(self) -> float:
        """Lower end of a uniform law's support (or of a constant's, which is the constant)."""
        return self.mean - math.sqrt(3.0 * self.var)

    @property
    def high(self) -> float:
        """Upper end of a uniform law's support (or of a constant's, which is the constant)."""
        return self.mean + math.sqrt(3.0 * self.var)

    def moments(self) -> Tuple[float, float]:
        """(mean, variance) of one entry."""
        return self.mean, self.var

    def sample(self, shape: Shape, rng: np.random.Generator, dtype: np.dtype) -> np.ndarray:
        """An array of ``shape`` with iid entries from this law (drawn in float64, then rounded to ``dtype``)."""
        if self.kind == "constant":
            return np.full(shape, self.mean, dtype=dtype)
        if self.kind == "uniform":
            return rng.uniform(self.low, self.high, size=shape).astype(dtype)
        return rng.normal(self.mean, self.std, size=shape).astype(dtype)


class Initializer:
    """Base of the initializers below: ``init(shape, rng, dtype=np.float32)`` draws iid entries from the law
    ``init.distribution(shape)``, which each subclass defines.

    Random laws need ``rng``; constant ones accept ``rng=None``. The same seed gives the same float64 draws
    whatever the dtype; float32 results are those, rounded. ``repr`` shows the options (the attributes).
    """

    def distribution(self, shape: Shape) -> Distribution:
        """The exact law of every entry drawn for a weight of ``shape``."""
        raise NotImplementedError(f"{type(self).__name__} must define distribution(shape)")

    def moments(self, shape: Shape) -> Tuple[float, float]:
        """(mean, variance) of every entry drawn for a weight of ``shape``."""
        return self.distribution(shape).moments()

    def __call__(self, shape: Shape, rng: np.random.Generator = None, dtype: Any = np.float32) -> np.ndarray:
        who = type(self).__name__
        law = self.distribution(_weight_shape(who, shape))
        dt = np.dtype(dtype) if isinstance(dtype, (type, str, np.dtype)) else None
        if dt is None or dt.kind != "f":
            raise TypeError(f"{who}: dtype must be a floating dtype such as np.float32 or np.float64; "
                            f"got {dtype!r}")
        if law.kind != "constant" or rng is not None:
            _checks.generator(who, "rng", rng)
        with np.errstate(over="ignore"):
            out = law.sample(tuple(shape), rng, dt)
        if not np.all(np.isfinite(out)):
            raise OverflowError(f"{self}: values overflow dtype {dt.name} (law {law}); use a wider dtype")
        return out

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({options})"


_REGISTRY = Registry("initializer", base=Initializer)


# ------------------------------------------------------------------------------------------------- constants
@_REGISTRY.register("constant")
class Constant(Initializer):
    """Every entry equals ``value``:  w = c.  Mean c, variance 0.

    Example:
        >>> Constant(0.5)((2, 3), np.random.default_rng(0))
        array([[0.5, 0.5, 0.5],
               [0.5, 0.5, 0.5]], dtype=float32)
        >>> Constant(0.5).moments((2, 3))
        (0.5, 0.0)
    """

    def __init__(self, value: float):
        self.value = _checks.real(type(self).__name__, "value", value)

    def distribution(self, shape: Shape) -> Distribution:
        return Distribution("constant", self.value, 0.0)


@_REGISTRY.register("zeros")
class Zeros(Initializer):
    """Every entry is 0 (the usual bias init; Li & Partovi Nia's lambda = 0).  Mean 0, variance 0.

    Example:
        >>> Zeros()((3,))
        array([0., 0., 0.], dtype=float32)
    """

    def distribution(self, shape: Shape) -> Distribution:
        return Distribution("constant", 0.0, 0.0)


@_REGISTRY.register("ones")
class Ones(Initializer):
    """Every entry is 1 (the usual BatchNorm scale init).  Mean 1, variance 0.

    Example:
        >>> Ones()((3,), dtype=np.float64)
        array([1., 1., 1.])
    """

    def distribution(self, shape: Shape) -> Distribution:
        return Distribution("constant", 1.0, 0.0)


@_REGISTRY.register("small_constant")
class SmallConstant(Constant):
    """A small positive constant bias, b = c (default c = 0.01).  Mean c, variance 0.

    The trick of starting every ReLU unit slightly "on" so that none is dead at the first step (Li et al. 2015,
    CS231n, as discussed by Li & Partovi Nia, Sec. 2); the deterministic counterpart of ``RandomBias``.

    Example:
        >>> SmallConstant()((2,))
        array([0.01, 0.01], dtype=float32)
        >>> SmallConstant(0.1)
        SmallConstant(value=0.1)
    """

    def __init__(self, value: float = 0.01):
        super().__init__(value)


zeros = Zeros()
ones = Ones()


# ------------------------------------------------------------------------------------------ plain random laws
@_REGISTRY.register("uniform")
class Uniform(Initializer):
    """w ~ U[low, high].  Mean (low + high) / 2, variance (high - low)^2 / 12.

    Example:
        >>> w = Uniform(-0.1, 0.3)((4, 5), np.random.default_rng(0))
        >>> bool(np.all((w >= -0.1) & (w <= 0.3)))
        True
        >>> [round(m, 6) for m in Uniform(-0.1, 0.3).moments((4, 5))]
        [0.1, 0.013333]
    """

    def __init__(self, low: float, high: float):
        who = type(self).__name__
        self.low, self.high = _checks.real(who, "low", low), _checks.real(who, "high", high)
        if not self.high > self.low:
            raise ValueError(f"{who}: high must be > low={self.low!r} (for a constant use Constant), got {self.high!r}")

    def distribution(self, shape: Shape) -> Distribution:
        return Distribution("uniform", (self.low + self.high) / 2.0, (self.high - self.low) ** 2 / 12.0)


@_REGISTRY.register("normal")
class Normal(Initializer):
    """w ~ N(mean, std^2).  Mean ``mean``, variance std^2.

    Example:
        >>> w = Normal(0.0, 0.05)((64, 32), np.random.default_rng(0))
        >>> Normal(0.0, 0.05).moments(w.shape)
        (0.0, 0.0025000000000000005)
    """

    def __init__(self, mean: float, std: float):
        who = type(self).__name__
        self.mean, self.std = _checks.real(who, "mean", mean), _checks.positive(who, "std", std)

    def distribution(self, shape: Shape) -> Distribution:
        return Distribution("normal", self.mean, self.std ** 2)


# ---------------------------------------------------------------------------------------- fan-scaled laws
@_REGISTRY.register("glorot_uniform", "xavier_uniform")
class GlorotUniform(Initializer):
    """w ~ U[-a, a],  a = gain * sqrt(6 / (fan_in + fan_out))  (Glorot & Bengio 2010, eq. 16).

    Mean 0, variance a^2 / 3 = gain^2 * 2 / (fan_in + fan_out): the compromise between keeping activations
    (1 / fan_in) and back-propagated gradients (1 / fan_out) at constant variance through linear layers.
    Also known as Xavier uniform. See ``fans`` for fan_in and fan_out.

    Example:
        >>> w = GlorotUniform()((256, 128), np.random.default_rng(0))
        >>> a = GlorotUniform().distribution((256, 128)).high        # sqrt(6 / 384) = 0.125
        >>> a, bool(np.all(np.abs(w) <= a))
        (0.125, True)
        >>> GlorotUniform().moments((256, 128))                      # variance 2 / 384
        (0.0, 0.005208333333333333)
    """

    def __init__(self, gain: float = 1.0):
        self.gain = _checks.positive(type(self).__name__, "gain", gain)

    def distribution(self, shape: Shape) -> Distribution:
        fan_in, fan_out = fans(shape)
        return Distribution("uniform", 0.0, self.gain ** 2 * 2.0 / (fan_in + fan_out))


@_REGISTRY.register("glorot_normal", "xavier_normal")
class GlorotNormal(GlorotUniform):
    """w ~ N(0, s^2),  s = gain * sqrt(2 / (fan_in + fan_out))  (Glorot & Bengio 2010; normal form of eq. 16).

    Mean 0, variance gain^2 * 2 / (fan_in + fan_out), the same as ``GlorotUniform``. Not truncated.
    Also known as Xavier normal.

    Example:
        >>> w = GlorotNormal(gain=2.0)((256, 128), np.random.default_rng(0))
        >>> GlorotNormal(gain=2.0).moments(w.shape)                  # 4 * 2 / 384
        (0.0, 0.020833333333333332)
    """

    def distribution(self, shape: Shape) -> Distribution:
        fan_in, fan_out = fans(shape)
        return Distribution("normal", 0.0, self.gain ** 2 * 2.0 / (fan_in + fan_out))


_MODES = ("fan_in", "fan_out")


@_REGISTRY.register("he_uniform", "kaiming_uniform")
class HeUniform(Initializer):
    """w ~ U[-a, a],  a = gain * sqrt(3 / fan)  (He et al. 2015, Sec. 2.2).

    Mean 0, variance gain^2 / fan. ``mode="fan_in"`` (default) keeps the forward activations' variance steady,
    ``mode="fan_out"`` the backward gradients'. The gain is ``gain_for(nonlinearity, negative_slope)``
    (default relu: gain = sqrt(2), so a = sqrt(6 / fan)), or pass ``gain=`` directly instead.
    Also known as Kaiming uniform.

    Example:
        >>> w = HeUniform()((10, 784), np.random.default_rng(0))
        >>> HeUniform().moments(w.shape) == (0.0, 2.0 / 784)
        True
        >>> HeUniform(mode="fan_out", nonlinearity="leaky_relu", negative_slope=0.1)
        HeUniform(mode='fan_out', nonlinearity='leaky_relu', negative_slope=0.1, gain=1.407...)
    """

    _kind = "uniform"

    def __init__(self, *, mode: str = "fan_in", nonlinearity: str = None, negative_slope: float = 0.0,
                 gain: float = None):
        who = type(self).__name__
        self.mode = _checks.choice(who, "mode", mode, _MODES)
        if gain is not None:
            if nonlinearity is not None or negative_slope != 0.0:
                raise ValueError(f"{who}: give either gain={gain!r} or nonlinearity (with negative_slope), "
                                 f"not both; got nonlinearity={nonlinearity!r}, negative_slope={negative_slope!r}")
            self.gain = _checks.positive(who, "gain", gain)
            self._gain2 = self.gain ** 2
        else:
            self.nonlinearity = "relu" if nonlinearity is None else nonlinearity
            self._gain2 = _gain_squared(self.nonlinearity, negative_slope, who)  # exact: He's 2 / fan_in
            if self.nonlinearity == "leaky_relu":
                self.negative_slope = float(negative_slope)
            self.gain = math.sqrt(self._gain2)

    def distribution(self, shape: Shape) -> Distribution:
        fan_in, fan_out = fans(shape)
        return Distribution(self._kind, 0.0, self._gain2 / (fan_in if self.mode == "fan_in" else fan_out))


@_REGISTRY.register("he_normal", "kaiming_normal")
class HeNormal(HeUniform):
    """w ~ N(0, s^2),  s = gain / sqrt(fan)  (He et al. 2015, Sec. 2.2).

    Mean 0, variance gain^2 / fan; default relu: s = sqrt(2 / fan_in). Not truncated. Arguments as in
    ``HeUniform``. Also known as Kaiming normal.

    Example:
        >>> w = HeNormal(mode="fan_out")((64, 3, 3, 3), np.random.default_rng(0))
        >>> HeNormal(mode="fan_out").moments(w.shape) == (0.0, 2.0 / 576)
        True
    """

    _kind = "normal"


@_REGISTRY.register("lecun_uniform")
class LeCunUniform(Initializer):
    """w ~ U[-a, a],  a = sqrt(3 / fan_in)  (LeCun et al. 1998, Efficient BackProp, Sec. 4.6).

    Mean 0, variance 1 / fan_in: a unit-variance input keeps unit variance through a linear layer.

    Example:
        >>> w = LeCunUniform()((10, 300), np.random.default_rng(0))
        >>> LeCunUniform().distribution(w.shape).high                 # sqrt(3 / 300)
        0.1
    """

    _kind = "uniform"

    def distribution(self, shape: Shape) -> Distribution:
        return Distribution(self._kind, 0.0, 1.0 / fans(shape)[0])


@_REGISTRY.register("lecun_normal")
class LeCunNormal(LeCunUniform):
    """w ~ N(0, 1 / fan_in)  (LeCun et al. 1998, Efficient BackProp, Sec. 4.6).  Mean 0, variance 1 / fan_in.

    Not truncated.

    Example:
        >>> w = LeCunNormal()((10, 400), np.random.default_rng(0))
        >>> LeCunNormal().moments(w.shape)
        (0.0, 0.0025)
    """

    _kind = "normal"


# ------------------------------------------------------------------------------------- binary-network laws
@_REGISTRY.register("constant_variance")
class ConstantVariance(Initializer):
    """w ~ U[-a, a] with a = sqrt(3 * variance), or w ~ N(0, variance): the same variance in every layer.

    Mean 0, variance ``variance`` whatever the shape (Sari et al. 2019, Sec. 3 and Table 1). With BatchNorm a
    binary network's forward pass ignores the weight scale and its gradient variance stays bounded (their
    Theorem 1), so fan-scaling is pointless: any zero-mean symmetric law works, and a constant variance lets
    large late layers start as far from 0 as early ones. Table 1 sweeps variance in {1e-1, 1e-2, 1e-3, 1e-4}
    with a uniform law (normal gave similar results); 1e-3 to 1e-4 was best for MobileNetV1.

    Example:
        >>> init = ConstantVariance(variance=1e-2)
        >>> init.moments((10, 784)) == init.moments((512, 256, 3, 3)) == (0.0, 1e-2)
        True
        >>> w = ConstantVariance(1e-4, distribution="normal")((10, 784), np.random.default_rng(0))
        >>> w.shape
        (10, 784)
    """

    def __init__(self, variance: float = 1e-2, distribution: str = "uniform"):
        who = type(self).__name__
        self.variance = _checks.positive(who, "variance", variance)  # the same sigma^2 for every layer
        self.distribution_kind = _checks.choice(who, "distribution", distribution, ("uniform", "normal"))

    def distribution(self, shape: Shape) -> Distribution:
        return Distribution(self.distribution_kind, 0.0, self.variance)


@_REGISTRY.register("random_bias")
class RandomBias(Initializer):
    """b ~ U[-lam, lam]  (Li & Partovi Nia, "Random Bias Initialization Improves Quantized Training", Sec. 4).

    Mean 0, variance lam^2 / 3. ``lam`` (lambda) is the half-width of the interval the biases are drawn from.
    An htanh unit (the STE of sign) passes gradient only where -1 <= s + b <= 1; with zero biases every unit
    is active on the same slab around 0, so points near the origin train every unit and far points none.
    Random biases shift the slabs: with BatchNorm (s ~ N(0, 1)) and lam = 2 they cover [-3, 3], i.e. almost
    all data (their recommended start). Larger lam evens out data points but starves high-bias units.
    lam = 0 gives zeros (their tables' baseline); their tables sweep lam from 0 to 3.

    Example:
        >>> b = RandomBias(lam=2.0)((128,), np.random.default_rng(0))
        >>> bool(np.all(np.abs(b) <= 2.0)), RandomBias(lam=2.0).moments(b.shape)
        (True, (0.0, 1.3333333333333333))
    """

    def __init__(self, lam: float = 2.0):
        self.lam = _checks.real(type(self).__name__, "lam", lam, minimum=0)  # half-width; about 2 with BatchNorm

    def distribution(self, shape: Shape) -> Distribution:
        if self.lam == 0.0:
            return Distribution("constant", 0.0, 0.0)
        return Distribution("uniform", 0.0, self.lam ** 2 / 3.0)


def names() -> Tuple[str, ...]:
    """The names ``get`` accepts, sorted.

    Example:
        >>> "glorot_uniform" in names() and "xavier_uniform" in names()
        True
    """
    return tuple(_REGISTRY.names())


def get(name_or_callable: Union[str, type, Callable], **kwargs: Any) -> Callable:
    """Resolve an initializer: a registered name (built with ``kwargs``), an Initializer class (built with
    ``kwargs``), or any callable ``init(shape, rng, dtype)``, which is returned unchanged.

    Example:
        >>> get("xavier_uniform", gain=2.0)
        GlorotUniform(gain=2.0)
        >>> get("constant_variance", variance=1e-3)
        ConstantVariance(variance=0.001, distribution_kind='uniform')
        >>> get(RandomBias, lam=1.5)
        RandomBias(lam=1.5)
        >>> get(zeros) is zeros
        True
    """
    return _REGISTRY.resolve(name_or_callable, allow_none=False, **kwargs)
