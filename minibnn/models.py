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
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ._checks import positive_int as _positive_int
from .layers import AvgPool2d, Conv2d, Flatten, Hardtanh, Identity, Linear, MaxPool2d, ReLU
from .module import Module, ModuleList, Sequential
from .normalization import make_norm
from .quantized import QuantConv2d, QuantLinear
from .random import get_rng
from .registry import Registry
from .tensor import Tensor

__all__ = ["bnn_mlp", "two_layer_mlp", "lenet5", "vgg_small", "vgg7", "bireal_resnet", "BiRealBlock",
           "GlobalAvgPool2d", "get", "names"]

_DEFAULTS: Dict[str, Any] = dict(
    width=1.0, input_quantizer="ste_sign", kernel_quantizer="ste_sign", kernel_constraint="weight_clip",
    weight_scale=None, alpha_init="median", weight_init="glorot_uniform", bias_init="zeros", norm="batchnorm", norm_multiplier=1.0,
    first_full_precision=True, last_full_precision=True, head_activation="hardtanh", pool="max", pad_values=1.0,
    rng=None, dtype=np.float32)


class GlobalAvgPool2d(Module):
    """y[n, c] = mean over h, w of x[n, c, h, w]: (N, C, H, W) -> (N, C).

    Example:
        >>> GlobalAvgPool2d()(np.ones((2, 3, 4, 4))).shape
        (2, 3)
    """

    def forward(self, x) -> Tensor:
        x = x if isinstance(x, Tensor) else Tensor(x)
        if x.ndim != 4:
            raise ValueError(f"GlobalAvgPool2d got input of shape {x.shape}; expected a 4-D input (N, C, H, W)")
        return x.mean(axis=(2, 3))


class _Recipe:
    """The common options of a builder, turned into layers: which quantizers, inits, norm and dtype to use."""

    def __init__(self, who: str, options: Dict[str, Any]):
        unknown = sorted(set(options) - set(_DEFAULTS))
        if unknown:
            raise TypeError(f"{who}: unknown options {unknown}; the common options are {sorted(_DEFAULTS)}")
        o = {**_DEFAULTS, **options}
        self.who = who
        width = o["width"]
        if isinstance(width, bool) or not isinstance(width, numbers.Real) or not width > 0:
            raise ValueError(f"{who}: width must be a number > 0, got {width!r}")
        if o["pool"] not in ("max", "avg"):
            raise ValueError(f"{who}: pool must be 'max' or 'avg', got {o['pool']!r}")
        if o["head_activation"] not in ("hardtanh", "relu", None, "none"):
            raise ValueError(f"{who}: head_activation must be 'hardtanh', 'relu' or None, got "
                             f"{o['head_activation']!r}")
        self.o = o
        self.rng = get_rng(o["rng"])
        self.bias_if_no_norm = o["norm"] in (None, "none", "identity")

    def units(self, n: int) -> int:
        """A hidden width scaled by ``width``, rounded, at least 1."""
        return max(1, int(round(n * float(self.o["width"]))))

    def _quant(self, role: str) -> Dict[str, Any]:
        """Quantizer options of a layer: role "hidden" (binary), "first" or "last"."""
        o = self.o
        binary = dict(input_quantizer=o["input_quantizer"], kernel_quantizer=o["kernel_quantizer"],
                      kernel_constraint=o["kernel_constraint"], weight_scale=o["weight_scale"],
                      alpha_init=o["alpha_init"])
        if role == "first":
            return {} if o["first_full_precision"] else {**binary, "input_quantizer": None}
        if role == "last":
            return {} if o["last_full_precision"] else binary
        return binary

    def _common(self, bias: bool) -> Dict[str, Any]:
        o = self.o
        return dict(bias=bias, weight_init=o["weight_init"], bias_init=o["bias_init"], rng=self.rng,
                    dtype=o["dtype"])

    def linear(self, n_in: int, n_out: int, role: str) -> Module:
        bias = role == "last" or self.bias_if_no_norm
        quant = self._quant(role)
        if not quant:
            return Linear(n_in, n_out, **self._common(bias))
        return QuantLinear(n_in, n_out, **quant, **self._common(bias))

    def conv(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, role: str) -> Module:
        quant = self._quant(role)
        common = self._common(self.bias_if_no_norm)
        if not quant:
            return Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, **common)
        pad = self.o["pad_values"] if quant.get("input_quantizer") is not None else 0.0
        return QuantConv2d(c_in, c_out, kernel, stride=stride, padding=padding, pad_values=pad, **quant, **common)

    def norm(self, features: int, spatial: bool, prev_layer: Module, next_layer: Module) -> Module:
        return make_norm(self.o["norm"], features, spatial=spatial, prev_layer=prev_layer, next_layer=next_layer,
                         multiplier=self.o["norm_multiplier"], dtype=self.o["dtype"])

    def pool(self) -> Module:
        return MaxPool2d(2) if self.o["pool"] == "max" else AvgPool2d(2)

    def head_activation(self) -> Optional[Module]:
        if not self.o["last_full_precision"]:
            return None
        kind = self.o["head_activation"]
        return Hardtanh() if kind == "hardtanh" else ReLU() if kind == "relu" else None


# (out_channels, kernel, padding, pool_after)
ConvSpec = Tuple[int, int, int, bool]


def _plain_net(recipe: _Recipe, in_channels: int, image_size: Optional[int], convs: Sequence[ConvSpec],
               fc_units: Sequence[int], num_classes: int, in_features: Optional[int] = None) -> Sequential:
    """conv blocks, then fully connected blocks, then the classifier; every block followed by its norm."""
    who = recipe.who
    num_classes = _positive_int(who, "num_classes", num_classes)
    total = len(convs) + len(fc_units) + 1
    role = lambda i: "first" if i == 0 else ("last" if i == total - 1 else "hidden")  # noqa: E731
    blocks: List[Tuple[Module, bool, bool]] = []  # (layer, pool after, spatial)
    channels, size = in_channels, image_size
    for i, (c_out, kernel, padding, pool) in enumerate(convs):
        c_out = recipe.units(c_out)
        blocks.append((recipe.conv(channels, c_out, kernel, 1, padding, role(i)), pool, True))
        size = size + 2 * padding - kernel + 1
        if size >= 1 and pool:
            size //= 2
        if size < 1:
            raise ValueError(f"{who}: image_size={image_size} is too small: the feature maps vanish after "
                             f"convolution {i + 1}")
        channels = c_out
    features = channels * size * size if convs else in_features
    for j, units in enumerate(fc_units):
        units = recipe.units(units)
        blocks.append((recipe.linear(features, units, role(len(convs) + j)), False, False))
        features = units
    classifier = recipe.linear(features, num_classes, "last")
    modules: List[Module] = [] if convs else [Flatten()]
    for i, (layer, pool, spatial) in enumerate(blocks):
        following = blocks[i + 1][0] if i + 1 < len(blocks) else classifier
        modules.append(layer)
        if pool:
            modules.append(recipe.pool())
        modules.append(recipe.norm(layer.weight.shape[0], spatial, layer, following))
        if spatial and not (i + 1 < len(blocks) and blocks[i + 1][2]):
            modules.append(Flatten())
    head = recipe.head_activation()
    if head is not None:
        modules.append(head)
    modules.append(classifier)
    return Sequential(*modules)


# --------------------------------------------------------------------------------------------------------------
# Multilayer perceptrons
# --------------------------------------------------------------------------------------------------------------
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
    recipe = _Recipe("bnn_mlp", options)
    in_features = _positive_int("bnn_mlp", "in_features", in_features)
    num_hidden = _positive_int("bnn_mlp", "num_hidden", num_hidden)
    hidden = _positive_int("bnn_mlp", "hidden_units", hidden_units)
    return _plain_net(recipe, 0, None, (), [hidden] * num_hidden, num_classes, in_features=in_features)


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
# Convolutional networks
# --------------------------------------------------------------------------------------------------------------
def lenet5(in_channels: int = 1, num_classes: int = 10, image_size: int = 28, **options) -> Sequential:
    """LeNet-5 (LeCun et al. 1998) as a binary network: 6C5(pad 2)-MP2-16C5-MP2-120FC-84FC-classifier.

    The first convolution pads by 2 so that a 28x28 MNIST image gives the classic 5x5x16 feature map before the
    fully connected part; the smallest image_size is 12.

    Example:
        >>> lenet5(image_size=12, width=0.5)(np.zeros((2, 1, 12, 12))).shape
        (2, 10)
    """
    recipe = _Recipe("lenet5", options)
    in_channels = _positive_int("lenet5", "in_channels", in_channels)
    image_size = _positive_int("lenet5", "image_size", image_size)
    return _plain_net(recipe, in_channels, image_size, [(6, 5, 2, True), (16, 5, 0, True)], [120, 84],
                      num_classes)


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
    recipe = _Recipe("vgg_small", options)
    convs = [(64, 3, 1, False), (64, 3, 1, True), (128, 3, 1, False), (128, 3, 1, True)]
    return _plain_net(recipe, _positive_int("vgg_small", "in_channels", in_channels),
                      _positive_int("vgg_small", "image_size", image_size), convs,
                      [_positive_int("vgg_small", "fc_units", u) for u in fc_units], num_classes)


def vgg7(in_channels: int = 3, num_classes: int = 10, image_size: int = 32, **options) -> Sequential:
    """BinaryNet's CIFAR-10 network (Courbariaux, Hubara et al. 2016), "VGG-7":
    2x128C3-MP2-2x256C3-MP2-2x512C3-MP2-2x1024FC-classifier. image_size must be at least 8.

    Example:
        >>> vgg7(image_size=8, width=1 / 32)(np.zeros((2, 3, 8, 8))).shape
        (2, 10)
    """
    recipe = _Recipe("vgg7", options)
    convs = [(128, 3, 1, False), (128, 3, 1, True), (256, 3, 1, False), (256, 3, 1, True),
             (512, 3, 1, False), (512, 3, 1, True)]
    return _plain_net(recipe, _positive_int("vgg7", "in_channels", in_channels),
                      _positive_int("vgg7", "image_size", image_size), convs, [1024, 1024], num_classes)


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
    recipe = _Recipe(who, options)
    in_channels = _positive_int(who, "in_channels", in_channels)
    image_size = _positive_int(who, "image_size", image_size)
    per_stage = _positive_int(who, "convs_per_stage", convs_per_stage)
    widths = [recipe.units(_positive_int(who, "channels", c)) for c in channels]
    if not widths:
        raise ValueError(f"{who}: channels must list at least one stage width, got {channels!r}")
    if image_size % 2 ** (len(widths) - 1):
        raise ValueError(f"{who}: image_size={image_size} must be divisible by {2 ** (len(widths) - 1)} "
                         f"(one halving per stage after the first)")
    num_classes = _positive_int(who, "num_classes", num_classes)

    stem_conv = recipe.conv(in_channels, widths[0], 3, 1, 1, "first")
    plan = []  # (c_in, c_out, stride, binary conv)
    c = widths[0]
    for s, w in enumerate(widths):
        for b in range(per_stage):
            stride = 2 if s > 0 and b == 0 else 1
            plan.append((c, w, stride, recipe.conv(c, w, 3, stride, 1, "hidden")))
            c = w
    classifier = recipe.linear(c, num_classes, "last")
    stem = Sequential(stem_conv, recipe.norm(widths[0], True, stem_conv, plan[0][3]))
    blocks = []
    for i, (c_in, c_out, stride, conv) in enumerate(plan):
        following = plan[i + 1][3] if i + 1 < len(plan) else classifier
        if stride == 1 and c_in == c_out:
            shortcut: Module = Identity()
        else:
            project = Conv2d(c_in, c_out, 1, bias=recipe.bias_if_no_norm, weight_init=recipe.o["weight_init"],
                             bias_init=recipe.o["bias_init"], rng=recipe.rng, dtype=recipe.o["dtype"])
            parts = ([AvgPool2d(2)] if stride == 2 else []) + [project,
                                                               recipe.norm(c_out, True, project, following)]
            shortcut = Sequential(*parts)
        blocks.append(BiRealBlock(conv, recipe.norm(c_out, True, conv, following), shortcut))
    return _ResNet(stem, blocks, Sequential(GlobalAvgPool2d(), classifier))


# --------------------------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------------------------
_BUILDERS = Registry("model")
for _builder in (bnn_mlp, two_layer_mlp, lenet5, vgg_small, vgg7, bireal_resnet):
    _BUILDERS.register(_builder.__name__)(_builder)


def names() -> List[str]:
    """The names of the model builders, sorted."""
    return _BUILDERS.names()


def get(name: str, **kwargs) -> Module:
    """Build the model called ``name`` (see :func:`names`) with the builder's arguments.

    Example:
        >>> get("two_layer_mlp", in_features=8, hidden_units=4, num_classes=2)(np.zeros((5, 8))).shape
        (5, 2)
    """
    return _BUILDERS.create(name, **kwargs)
