"""Model builders: the binary networks of the papers, at any width, from classroom size up.

==================  ==========================================================================================
builder             architecture (hidden widths before the ``width`` multiplier)
==================  ==========================================================================================
``bnn_mlp``         BinaryNet's MNIST MLP (Courbariaux, Hubara et al. 2016): 3 hidden layers of 4096 units
``two_layer_mlp``   the 2-layer MLP of Kim et al. 2021: 2 hidden layers (512 units; the width is our choice)
``lenet5``          LeNet-5: 6C5-MP2-16C5-MP2-120FC-84FC (Kim et al. 2021 train it binary on MNIST)
``vgg_small``       Kim et al. 2021's vgg-small: 64C3-64C3-MP2-128C3-128C3-MP2-512FC-512FC
``vgg7``            BinaryNet's CIFAR-10 net: 2x128C3-MP2-2x256C3-MP2-2x512C3-MP2-2x1024FC
``bireal_resnet``   a small binary ResNet with Bi-Real shortcuts (Liu et al. 2018): a real-valued identity
                    shortcut around every binary 3x3 convolution; 3 stages of 16, 32, 64 channels
==================  ==========================================================================================

Every builder ends with a classifier to ``num_classes``. Its hidden layers are binary
(:class:`~minibnn.quantized.QuantLinear` / :class:`~minibnn.quantized.QuantConv2d` with the chosen
quantizers), each followed by (pooling and) a normalisation; the **first and last layers are full precision**
by default, as in BinaryNet, XNOR-Net, BNN+ (Darabi et al. 2018, Algorithm 1) and Sari et al. 2019. The sign
activation of a binary layer is its ``input_quantizer``: a hidden block is

    binary layer (input_quantizer(x) ⋆ kernel_quantizer(W))  ->  [max-pool]  ->  norm

and the next binary layer binarizes the norm's output. Before a full-precision classifier the activations
pass through ``head_activation`` (hardtanh by default: the float counterpart of sign).

Common options (keyword-only, accepted by every builder):

    width=1.0                 multiplier of every hidden width (channels, units), rounded, at least 1
    input_quantizer="ste_sign", kernel_quantizer="ste_sign", kernel_constraint="weight_clip", weight_scale=None
                              passed to each binary layer (see minibnn.quantized). Give names: a quantizer
                              object would be shared by all layers.
    weight_init="glorot_uniform", bias_init="zeros"     every layer's initializers (minibnn.init names)
    norm="batchnorm"          the normalisation after each hidden layer: "batchnorm", "centred", "fixed",
                              "glorot" or "none" (minibnn.normalization.make_norm; Sari et al. 2019, Table 2)
    norm_multiplier=1.0       c in the "fixed" variance c·K_{l-1}
    first_full_precision=True   False: the first layer binarizes its weights (not its input, the raw data)
    last_full_precision=True    False: the classifier binarizes its input and weights
    head_activation="hardtanh"  before a full-precision classifier: "hardtanh", "relu" or None
    pool="max"                "max" or "avg" pooling (Kim et al. 2021 compare both)
    pad_values=1.0            the border of binary convolutions (±1 keeps the input binary)
    rng=None, dtype=float32   the generator of the initial weights, and the dtype

Hidden layers followed by a norm have no bias (the norm's β plays that role), except with ``norm="none"``.

Example:
    >>> import numpy as np
    >>> model = lenet5(in_channels=1, num_classes=3, image_size=12, width=0.5, rng=np.random.default_rng(0))
    >>> model(np.zeros((2, 1, 12, 12), dtype=np.float32)).shape
    (2, 3)
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass, fields
from typing import Any, List, Optional, Sequence

import numpy as np

from . import _checks
from .layers import AvgPool2d, Conv2d, Flatten, GlobalAvgPool2d, Hardtanh, Identity, Linear, MaxPool2d, ReLU
from .module import Module, ModuleList, Sequential
from .normalization import make_norm
from .quantized import QuantConv2d, QuantLinear
from .random import get_rng
from .registry import Registry
from .tensor import Tensor

__all__ = ["bnn_mlp", "two_layer_mlp", "lenet5", "vgg_small", "vgg7", "bireal_resnet", "BiRealBlock",
           "GlobalAvgPool2d", "get", "names"]

_MODELS = Registry("model")


@dataclass
class _Options:
    """The common options of every builder, with their defaults (see the module docstring)."""

    width: float = 1.0
    input_quantizer: Any = "ste_sign"
    kernel_quantizer: Any = "ste_sign"
    kernel_constraint: Any = "weight_clip"
    weight_scale: Any = None
    alpha_init: Any = "median"
    weight_init: Any = "glorot_uniform"
    bias_init: Any = "zeros"
    norm: Optional[str] = "batchnorm"
    norm_multiplier: float = 1.0
    first_full_precision: bool = True
    last_full_precision: bool = True
    head_activation: Optional[str] = "hardtanh"
    pool: str = "max"
    pad_values: float = 1.0
    rng: Any = None
    dtype: Any = np.float32


def _options(who: str, options: dict) -> _Options:
    """The builder's ``**options`` checked and completed with the defaults; ``rng`` made a Generator."""
    known = [f.name for f in fields(_Options)]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise TypeError(f"{who}: unknown options {unknown}; the common options are {sorted(known)}")
    o = _Options(**options)
    if isinstance(o.width, bool) or not isinstance(o.width, numbers.Real) or not o.width > 0:
        raise ValueError(f"{who}: width must be a number > 0, got {o.width!r}")
    if o.pool not in ("max", "avg"):
        raise ValueError(f"{who}: pool must be 'max' or 'avg', got {o.pool!r}")
    if o.head_activation not in ("hardtanh", "relu", None, "none"):
        raise ValueError(f"{who}: head_activation must be 'hardtanh', 'relu' or None, got {o.head_activation!r}")
    o.rng = get_rng(o.rng)
    return o


# ---- the layers of a block, as the options ask ----------------------------------------------------------------
def _units(o: _Options, n: int) -> int:
    """A hidden width scaled by ``width``, rounded, at least 1."""
    return max(1, int(round(n * float(o.width))))


def _has_bias(o: _Options) -> bool:
    """Hidden layers have a bias only without a norm (the norm's β plays that role)."""
    return o.norm in (None, "none", "identity")


def _quantizers(o: _Options, role: str) -> dict:
    """The quantizer options of a layer: {} (full precision) or what QuantLinear/QuantConv2d take.

    role "hidden": binary; "first": full precision, or binary weights with a float input (the raw data);
    "last": full precision, or binary.
    """
    if (role == "first" and o.first_full_precision) or (role == "last" and o.last_full_precision):
        return {}
    return dict(input_quantizer=None if role == "first" else o.input_quantizer, kernel_quantizer=o.kernel_quantizer,
                kernel_constraint=o.kernel_constraint, weight_scale=o.weight_scale, alpha_init=o.alpha_init)


def _linear(o: _Options, n_in: int, n_out: int, role: str) -> Module:
    common = dict(bias=role == "last" or _has_bias(o), weight_init=o.weight_init, bias_init=o.bias_init,
                  rng=o.rng, dtype=o.dtype)
    quant = _quantizers(o, role)
    return QuantLinear(n_in, n_out, **quant, **common) if quant else Linear(n_in, n_out, **common)


def _conv(o: _Options, c_in: int, c_out: int, kernel: int, stride: int, padding: int, role: str) -> Module:
    common = dict(stride=stride, padding=padding, bias=_has_bias(o), weight_init=o.weight_init,
                  bias_init=o.bias_init, rng=o.rng, dtype=o.dtype)
    quant = _quantizers(o, role)
    if not quant:
        return Conv2d(c_in, c_out, kernel, **common)
    pad = o.pad_values if quant["input_quantizer"] is not None else 0.0  # ±1 borders keep a binary input binary
    return QuantConv2d(c_in, c_out, kernel, pad_values=pad, **quant, **common)


def _norm(o: _Options, layer: Module, following: Module, spatial: bool) -> Module:
    """The norm after ``layer`` (its variance rule may read the layer and the one that follows)."""
    return make_norm(o.norm, layer.weight.shape[0], spatial=spatial, prev_layer=layer, next_layer=following,
                     multiplier=o.norm_multiplier, dtype=o.dtype)


def _pool(o: _Options) -> Module:
    return MaxPool2d(2) if o.pool == "max" else AvgPool2d(2)


def _head(o: _Options) -> List[Module]:
    """The activation before a full-precision classifier (none before a binary one)."""
    if not o.last_full_precision or o.head_activation in (None, "none"):
        return []
    return [Hardtanh() if o.head_activation == "hardtanh" else ReLU()]


# --------------------------------------------------------------------------------------------------------------
# Multilayer perceptrons
# --------------------------------------------------------------------------------------------------------------
@_MODELS.register("bnn_mlp")
def bnn_mlp(in_features: int = 784, num_classes: int = 10, hidden_units: int = 4096, num_hidden: int = 3,
            **options) -> Sequential:
    """BinaryNet's MLP (Courbariaux, Hubara et al. 2016, MNIST): ``num_hidden`` hidden layers of
    ``hidden_units·width`` units, each followed by a norm, then the classifier.

    Flatten -> Linear(in, h) [first] -> norm -> (binary Linear(h, h) -> norm) x (num_hidden - 1)
    -> head activation -> Linear(h, num_classes) [last]. Inputs (N, in_features) or images that flatten to it.

    Args:
        in_features, num_classes: input size (e.g. 784 = 28·28) and number of classes.
        hidden_units, num_hidden: the hidden layers (BinaryNet: 3 of 4096).
        **options: the common options (module docstring).

    Example:
        >>> model = bnn_mlp(in_features=64, num_classes=10, width=1 / 64, rng=np.random.default_rng(0))
        >>> [type(m).__name__ for m in model][:6]
        ['Flatten', 'Linear', 'BatchNorm1d', 'QuantLinear', 'BatchNorm1d', 'QuantLinear']
    """
    o = _options("bnn_mlp", options)
    in_features = _checks.positive_int("bnn_mlp", "in_features", in_features)
    num_hidden = _checks.positive_int("bnn_mlp", "num_hidden", num_hidden)
    h = _units(o, _checks.positive_int("bnn_mlp", "hidden_units", hidden_units))
    num_classes = _checks.positive_int("bnn_mlp", "num_classes", num_classes)
    hidden = [_linear(o, in_features, h, "first")] + [_linear(o, h, h, "hidden") for _ in range(num_hidden - 1)]
    classifier = _linear(o, h, num_classes, "last")
    following = hidden[1:] + [classifier]
    return Sequential(Flatten(),
                      *[m for layer, nxt in zip(hidden, following) for m in (layer, _norm(o, layer, nxt, False))],
                      *_head(o),
                      classifier)


@_MODELS.register("two_layer_mlp")
def two_layer_mlp(in_features: int = 784, num_classes: int = 10, hidden_units: int = 512, **options) -> Sequential:
    """The 2-layer MLP of Kim et al. 2021 (MNIST): two hidden layers, ``bnn_mlp(num_hidden=2)``.

    The paper gives no width; 512 is our default. With full-precision first and last layers the binary part is
    the hidden-to-hidden layer: Linear(in, h) -> norm -> binary Linear(h, h) -> norm -> Linear(h, classes).

    Example:
        >>> two_layer_mlp(in_features=16, num_classes=4, hidden_units=8)(np.zeros((3, 16))).shape
        (3, 4)
    """
    return bnn_mlp(in_features, num_classes, hidden_units=hidden_units, num_hidden=2, **options)


# --------------------------------------------------------------------------------------------------------------
# Convolutional networks: conv blocks (conv -> [pool] -> norm), then fully connected blocks, then the classifier
# --------------------------------------------------------------------------------------------------------------
def _conv_net(who: str, o: _Options, in_channels: int, image_size: int, convs: Sequence[tuple],
              fc_units: Sequence[int], num_classes: int) -> Sequential:
    """The network of a table: ``convs`` lists (out_channels, kernel, padding, pool after) per conv block."""
    in_channels = _checks.positive_int(who, "in_channels", in_channels)
    size = image_size = _checks.positive_int(who, "image_size", image_size)
    fc_units = [_checks.positive_int(who, "fc_units", u) for u in fc_units]
    num_classes = _checks.positive_int(who, "num_classes", num_classes)
    layers, pools, channels = [], [], in_channels
    for i, (c_out, kernel, padding, pool) in enumerate(convs):
        layers.append(_conv(o, channels, _units(o, c_out), kernel, 1, padding, "first" if i == 0 else "hidden"))
        pools.append(pool)
        channels, size = _units(o, c_out), size + 2 * padding - kernel + 1
        size = size // 2 if pool and size >= 1 else size
        if size < 1:
            raise ValueError(f"{who}: image_size={image_size} is too small: the feature maps vanish after "
                             f"convolution {i + 1}")
    features = channels * size * size
    for units in fc_units:
        layers.append(_linear(o, features, _units(o, units), "hidden"))
        features = _units(o, units)
    classifier = _linear(o, features, num_classes, "last")
    modules: List[Module] = []
    for i, layer in enumerate(layers):
        following = layers[i + 1] if i + 1 < len(layers) else classifier
        spatial = i < len(convs)
        modules += [layer] + ([_pool(o)] if spatial and pools[i] else []) + [_norm(o, layer, following, spatial)]
        if i + 1 == len(convs):
            modules.append(Flatten())
    return Sequential(*modules, *_head(o), classifier)


@_MODELS.register("lenet5")
def lenet5(in_channels: int = 1, num_classes: int = 10, image_size: int = 28, **options) -> Sequential:
    """LeNet-5 (LeCun et al. 1998) as a binary network: 6C5(pad 2)-MP2-16C5-MP2-120FC-84FC-classifier.

    The first convolution pads by 2 so that a 28x28 MNIST image gives the classic 5x5x16 feature map before the
    fully connected part; the smallest image_size is 12.

    Example:
        >>> lenet5(image_size=12, width=0.5)(np.zeros((2, 1, 12, 12))).shape
        (2, 10)
    """
    convs = [(6, 5, 2, True), (16, 5, 0, True)]
    return _conv_net("lenet5", _options("lenet5", options), in_channels, image_size, convs, [120, 84], num_classes)


@_MODELS.register("vgg_small")
def vgg_small(in_channels: int = 3, num_classes: int = 10, image_size: int = 32,
              fc_units: Sequence[int] = (512, 512), **options) -> Sequential:
    """Kim et al. 2021's vgg-small: 64C3-64C3-MP2-128C3-128C3-MP2, then fully connected layers of 512 units.

    The paper describes "4 convolution layers with 64, 64, 128, 128 output channels followed by 3 fully-connected
    layers with 512 neurons"; we read that as two hidden layers of 512 plus the classifier (pass
    ``fc_units=(512, 512, 512)`` for three hidden ones). Max pooling comes right after the convolution, before
    the norm (Kim et al., Sec. 3.2). image_size must be at least 4.

    Example:
        >>> vgg_small(image_size=8, width=1 / 16)(np.zeros((2, 3, 8, 8))).shape
        (2, 10)
    """
    convs = [(64, 3, 1, False), (64, 3, 1, True), (128, 3, 1, False), (128, 3, 1, True)]
    return _conv_net("vgg_small", _options("vgg_small", options), in_channels, image_size, convs, fc_units,
                     num_classes)


@_MODELS.register("vgg7")
def vgg7(in_channels: int = 3, num_classes: int = 10, image_size: int = 32, **options) -> Sequential:
    """BinaryNet's CIFAR-10 network (Courbariaux, Hubara et al. 2016), "VGG-7":
    2x128C3-MP2-2x256C3-MP2-2x512C3-MP2-2x1024FC-classifier. image_size must be at least 8.

    Example:
        >>> vgg7(image_size=8, width=1 / 32)(np.zeros((2, 3, 8, 8))).shape
        (2, 10)
    """
    convs = [(128, 3, 1, False), (128, 3, 1, True), (256, 3, 1, False), (256, 3, 1, True),
             (512, 3, 1, False), (512, 3, 1, True)]
    return _conv_net("vgg7", _options("vgg7", options), in_channels, image_size, convs, [1024, 1024], num_classes)


# --------------------------------------------------------------------------------------------------------------
# Binary ResNet with Bi-Real shortcuts
# --------------------------------------------------------------------------------------------------------------
class BiRealBlock(Module):
    """out = norm(binary_conv(x)) + shortcut(x): a real-valued shortcut around ONE binary convolution
    (Bi-Real Net, Liu et al. 2018), so the real-valued activations x reach the next block unbinarized.

    Args:
        conv: the binary 3x3 convolution (its input quantizer binarizes x).
        norm: the normalisation of its output.
        shortcut: Identity, or (when the block changes resolution or channels) average pooling, a
            full-precision 1x1 convolution and a norm.
    """

    def __init__(self, conv: Module, norm: Module, shortcut: Module):
        super().__init__()
        self.conv, self.norm, self.shortcut = conv, norm, shortcut

    def forward(self, x) -> Tensor:
        return self.norm(self.conv(x)) + self.shortcut(x)


class _ResNet(Module):
    """stem -> blocks -> global average pooling -> classifier."""

    def __init__(self, stem: Module, blocks: Sequence[Module], head: Module):
        super().__init__()
        self.stem, self.blocks, self.head = stem, ModuleList(blocks), head

    def forward(self, x) -> Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x)


@_MODELS.register("bireal_resnet")
def bireal_resnet(in_channels: int = 3, num_classes: int = 10, image_size: int = 32,
                  channels: Sequence[int] = (16, 32, 64), convs_per_stage: int = 2, **options) -> Module:
    """A small binary ResNet with Bi-Real shortcuts (Liu et al. 2018; the CIFAR layout of He et al. 2016).

    stem: full-precision 3x3 conv to ``channels[0]`` -> norm; then per stage s, ``convs_per_stage``
    :class:`BiRealBlock` (binary 3x3 conv -> norm, plus the shortcut), the first of stages s > 0 with stride 2
    and a shortcut of 2x2 average pooling, full-precision 1x1 conv and norm; then global average pooling and
    the classifier (which reads the real-valued pooled features; ``head_activation`` is not used).
    ``image_size`` must be divisible by 2^(len(channels) - 1).

    Example:
        >>> net = bireal_resnet(image_size=8, channels=(4, 8), convs_per_stage=1)
        >>> net(np.zeros((2, 3, 8, 8))).shape
        (2, 10)
    """
    who = "bireal_resnet"
    o = _options(who, options)
    in_channels = _checks.positive_int(who, "in_channels", in_channels)
    image_size = _checks.positive_int(who, "image_size", image_size)
    per_stage = _checks.positive_int(who, "convs_per_stage", convs_per_stage)
    widths = [_units(o, _checks.positive_int(who, "channels", c)) for c in channels]
    if not widths:
        raise ValueError(f"{who}: channels must list at least one stage width, got {channels!r}")
    if image_size % 2 ** (len(widths) - 1):
        raise ValueError(f"{who}: image_size={image_size} must be divisible by {2 ** (len(widths) - 1)} "
                         f"(one halving per stage after the first)")
    num_classes = _checks.positive_int(who, "num_classes", num_classes)

    stem_conv = _conv(o, in_channels, widths[0], 3, 1, 1, "first")
    plan = []  # (c_in, c_out, stride, binary conv)
    c = widths[0]
    for s, w in enumerate(widths):
        for b in range(per_stage):
            stride = 2 if s > 0 and b == 0 else 1
            plan.append((c, w, stride, _conv(o, c, w, 3, stride, 1, "hidden")))
            c = w
    classifier = _linear(o, c, num_classes, "last")
    stem = Sequential(stem_conv, _norm(o, stem_conv, plan[0][3], True))
    blocks = []
    for i, (c_in, c_out, stride, conv) in enumerate(plan):
        following = plan[i + 1][3] if i + 1 < len(plan) else classifier
        if stride == 1 and c_in == c_out:
            shortcut: Module = Identity()
        else:
            project = Conv2d(c_in, c_out, 1, bias=_has_bias(o), weight_init=o.weight_init, bias_init=o.bias_init,
                             rng=o.rng, dtype=o.dtype)
            shortcut = Sequential(*([AvgPool2d(2)] if stride == 2 else []), project,
                                  _norm(o, project, following, True))
        blocks.append(BiRealBlock(conv, _norm(o, conv, following, True), shortcut))
    return _ResNet(stem, blocks, Sequential(GlobalAvgPool2d(), classifier))


# --------------------------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------------------------
def names() -> List[str]:
    """The names of the model builders, sorted."""
    return _MODELS.names()


def get(name: str, **kwargs) -> Module:
    """Build the model called ``name`` (see :func:`names`) with the builder's arguments.

    Example:
        >>> get("two_layer_mlp", in_features=8, hidden_units=4, num_classes=2)(np.zeros((5, 8))).shape
        (5, 2)
    """
    return _MODELS.create(name, **kwargs)
