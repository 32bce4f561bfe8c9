"""Quantized layers: Linear and Conv2d that quantize their input and their weight before the product.

    y = q_in(x) ⋆ (α · q_w(W)) + b

where ⋆ is the matrix product (:class:`QuantLinear`) or the convolution (:class:`QuantConv2d`), q_in the
``input_quantizer``, q_w the ``kernel_quantizer`` (both from :mod:`minibnn.quantizers`: a name such as
``"ste_sign"``, a quantizer object, or None for full precision) and α an optional per-filter scale. With
``q_in = q_w = ste_sign`` and no scale, the forward pass multiplies ±1 by ±1: a binary neural network layer
(Hubara et al. 2016), whose product a bit-packed XNOR-popcount kernel can compute.

**Latent weights and binary weights are different things**, and this module keeps them apart:

* ``layer.weight`` is the *latent* float :class:`~minibnn.module.Parameter`. The optimizer updates it, the
  ``kernel_constraint`` clips it, the checkpoint saves it. It is never ±1 (unless an optimizer like
  :class:`minibnn.bop.Bop` makes it so).
* ``layer.quantized_weight()`` returns q_w(W), the 1-bit values (±1) the forward pass multiplies with, as a
  new NumPy array (not a Parameter: nothing trains it).
* ``layer.filter_scale()`` returns α (one per output filter) or None; ``layer.effective_weight()`` returns
  α·q_w(W), the exact operand of the product.

The weight scale (``weight_scale=``):

* ``None``: no scale (BinaryNet).
* ``"xnor"``: α_c = mean|W_c|, recomputed from the latent weights at each forward (Rastegari et al. 2016,
  XNOR-Net), differentiable through |W| (see :func:`minibnn.scales.xnor_scale`).
* ``"trainable"``: α is a Parameter ``alpha`` of shape (out,), initialised once to median|W_c| (``alpha_init=
  "median"``) or mean|W_c| (``"mean"``) and trained with the rest (BNN+, Darabi et al. 2018, Sec. 3.3; pair it
  with :class:`minibnn.regularizers.BNNPlusRegularizer`).

How the pieces plug in: ``QuantLinear.forward`` is the formula, ``F.linear(self.input_operand(x),
self.weight_operand(), self.bias, use_kernel=self.kernel_active)`` (``F.conv2d`` for QuantConv2d). A binary
layer (``is_binary``) passes ``use_kernel=True`` (unless ``use_kernel=False`` or
``minibnn.xnor.backend.use_kernels(False)`` says no): the same op then runs its forward on the XNOR-popcount
kernels when the operands really are ±1 (weights ±α), in training too, with the same result and gradients
(see :mod:`minibnn.xnor.backend`).
The padded border of a quantized convolution is ``pad_values`` (Larq's name): ±1 keeps a binary input binary
(one-padding, what an XNOR kernel computes directly), 0 leaves it ternary at the border (the kernel then
subtracts a correction term, still exact).

Presets: :class:`BinaryLinear` and :class:`BinaryConv2d` are the BinaryNet layers: ``ste_sign`` on input and
weight, weights clipped to [-1, 1] after each step (``kernel_constraint="weight_clip"``, applied by
:func:`minibnn.constraints.apply_constraints`).

Example:
    >>> import numpy as np
    >>> layer = BinaryLinear(3, 2, bias=False, rng=np.random.default_rng(0))
    >>> x = np.array([[0.5, -2.0, 0.0]], dtype=np.float32)
    >>> y = layer(x)
    >>> w_binary = layer.quantized_weight()          # the ±1 weights the product used
    >>> np.array_equal(w_binary, np.where(layer.weight.data >= 0, 1.0, -1.0))   # sign(W), sign(0) = +1
    True
    >>> np.array_equal(w_binary, layer.weight.data)                               # W itself is a float
    False
    >>> np.array_equal(y.data, np.array([[1.0, -1.0, 1.0]]) @ w_binary.T)   # sign(0) = +1
    True
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .xnor import backend as _backend
from . import constraints as _constraints
from . import functional as F
from . import quantizers as _quantizers
from .layers import Conv2d, InitSpec, Linear
from .scales import init_alpha, mean_abs, scale_filters, xnor_scale
from .tensor import Tensor, as_tensor, no_grad

__all__ = ["QuantLinear", "QuantConv2d", "BinaryLinear", "BinaryConv2d", "WEIGHT_SCALES"]

#: the accepted values of ``weight_scale``
WEIGHT_SCALES = (None, "xnor", "trainable")


def _precision_of(quantizer) -> Optional[int]:
    """Bits of a quantizer's output: its ``precision`` attribute; None (full precision) without a quantizer."""
    return None if quantizer is None else getattr(quantizer, "precision", None)


class _Quantized:
    """What QuantLinear and QuantConv2d share: the quantizers, the constraint, the scale and the two hooks.

    Mixed in before :class:`~minibnn.layers.Linear` / :class:`~minibnn.layers.Conv2d`; the subclass's ``forward``
    hands ``input_operand(x)`` and ``weight_operand()`` to the product, on the kernels when ``kernel_active``.
    """

    def _setup_quantization(self, input_quantizer, kernel_quantizer, kernel_constraint, weight_scale,
                            alpha_init: str, use_kernel: Optional[bool]) -> None:
        who = type(self).__name__
        if use_kernel is not None and not isinstance(use_kernel, (bool, np.bool_)):
            raise TypeError(f"{who}: use_kernel must be True, False or None (follow minibnn.xnor.backend.use_kernels), "
                            f"got {use_kernel!r}")
        self.use_kernel = None if use_kernel is None else bool(use_kernel)
        self.input_quantizer = _quantizers.get(input_quantizer)
        self.kernel_quantizer = _quantizers.get(kernel_quantizer)
        self.kernel_constraint = _constraints.get(kernel_constraint)
        if weight_scale not in WEIGHT_SCALES:
            raise ValueError(f"{who}: weight_scale must be one of {WEIGHT_SCALES}, got {weight_scale!r}")
        if weight_scale is not None and self.kernel_quantizer is None:
            raise ValueError(f"{who}: weight_scale={weight_scale!r} scales quantized weights, but kernel_quantizer "
                             f"is None; give a kernel_quantizer (e.g. 'ste_sign') or drop the scale")
        self.weight_scale = weight_scale
        if weight_scale == "trainable":
            self.alpha = init_alpha(self.weight, alpha_init)
        # quantizers made from a name hold float32 parameters (e.g. a trainable β): match the layer's dtype
        if self.weight.dtype != np.float32:
            self.astype(self.weight.dtype)

    # ---- precision (read by summaries and kernel backends) -------------------------------------------------
    @property
    def input_precision(self) -> Optional[int]:
        """Bits of the input the product sees (1 for a sign input quantizer), None for full precision."""
        return _precision_of(self.input_quantizer)

    @property
    def kernel_precision(self) -> Optional[int]:
        """Bits of the weights the product sees (1 for a sign kernel quantizer), None for full precision."""
        return _precision_of(self.kernel_quantizer)

    @property
    def is_binary(self) -> bool:
        """True when both operands of the product are 1-bit: the layer an XNOR-popcount kernel can run."""
        return self.input_precision == 1 and self.kernel_precision == 1

    @property
    def kernel_active(self) -> bool:
        """True when the next forward asks for the XNOR-popcount kernels (``use_kernel=True`` to the product op):
        a binary layer whose ``use_kernel`` (or, if None, the global :func:`minibnn.xnor.backend.use_kernels` switch)
        says yes. This is the one place that choice is made; the op still runs the float product for a call
        whose operands turn out not to be ±1 (weights ±α)."""
        return self.is_binary and _backend.kernel_wanted(self.use_kernel)

    # ---- the two operands of the product -------------------------------------------------------------------
    def input_operand(self, x) -> Tensor:
        """q_in(x), or x without an input quantizer (a NumPy input first becomes a tensor of the layer's dtype)."""
        if self.input_quantizer is None:
            return x
        return self.input_quantizer(as_tensor(x, dtype=self.weight.dtype))

    def weight_operand(self) -> Tensor:
        """α · q_w(W): the weight operand of the product (differentiable, with the quantizer's pseudo-gradient)."""
        w = self.weight if self.kernel_quantizer is None else self.kernel_quantizer(self.weight)
        if self.weight_scale == "xnor":
            return w * xnor_scale(self.weight)
        if self.weight_scale == "trainable":
            return scale_filters(w, self.alpha)
        return w

    # ---- reading the weights -------------------------------------------------------------------------------
    @no_grad()
    def quantized_weight(self) -> np.ndarray:
        """q_w(W) as a new array: the (±1 for a sign quantizer) weights of the forward pass, before the scale α.

        The latent float weights are ``self.weight``; this is computed from them and is not a Parameter.
        """
        w = self.weight if self.kernel_quantizer is None else self.kernel_quantizer(self.weight)
        return np.array(w.data, copy=True)

    def filter_scale(self) -> Optional[np.ndarray]:
        """α per output filter, shape (out,): mean|W_c| ("xnor"), the trained ``alpha`` ("trainable"), else None."""
        if self.weight_scale == "xnor":
            return mean_abs(self.weight)
        if self.weight_scale == "trainable":
            return np.array(self.alpha.data, copy=True)
        return None

    @no_grad()
    def effective_weight(self) -> np.ndarray:
        """α · q_w(W) as a new array: exactly the weight operand the forward pass multiplies with."""
        return np.array(self.weight_operand().data, copy=True)

    def _quant_repr(self) -> str:
        parts = []
        if self.input_quantizer is not None and not isinstance(self.input_quantizer, _quantizers.Quantizer):
            parts.append(f"input_quantizer={getattr(self.input_quantizer, '__name__', self.input_quantizer)}")
        if self.kernel_quantizer is not None and not isinstance(self.kernel_quantizer, _quantizers.Quantizer):
            parts.append(f"kernel_quantizer={getattr(self.kernel_quantizer, '__name__', self.kernel_quantizer)}")
        if self.kernel_constraint is not None:
            parts.append(f"kernel_constraint={self.kernel_constraint!r}")
        if self.weight_scale is not None:
            parts.append(f"weight_scale={self.weight_scale!r}")
        if self.use_kernel is not None:
            parts.append(f"use_kernel={self.use_kernel}")
        return "".join(", " + p for p in parts)


class QuantLinear(_Quantized, Linear):
    """Quantized fully connected layer:  y = q_in(x) @ (α·q_w(W))ᵀ + b  (Larq's QuantDense).

    Args:
        in_features, out_features, bias: as for :class:`minibnn.layers.Linear`.
        input_quantizer: quantizer of the input (a name from :func:`minibnn.quantizers.names`, a quantizer or
            callable, or None = full precision, the default).
        kernel_quantizer: quantizer of the latent weight W, likewise (default None).
        kernel_constraint: applied to W after each optimizer step by :func:`minibnn.constraints.apply_constraints`:
            a name (``"weight_clip"``), a callable, or None (default).
        weight_scale: None (default), ``"xnor"`` (α = mean|W_c| on the fly) or ``"trainable"`` (BNN+'s α).
        alpha_init: with ``weight_scale="trainable"``: ``"median"`` (default, minimiser of R1) or ``"mean"`` (R2).
        weight_init: initializer name or callable for W; default "glorot_uniform" (U[-a, a],
            a = sqrt(6 / (in_features + out_features))), as in BinaryNet.
        bias_init: likewise for b; default "zeros".
        rng, dtype: as for Linear.
        use_kernel: for a binary layer, run the forward on the XNOR-popcount kernels (True), never (False), or
            as the global switch :func:`minibnn.xnor.backend.use_kernels` says (None, default). Results and
            gradients do not depend on it (see :mod:`minibnn.xnor.backend`), only the speed.

    Attributes:
        weight: the latent float weights (out_features, in_features), a Parameter.
        alpha: the trainable scale (out_features,), only with ``weight_scale="trainable"``.

    Example:
        >>> layer = QuantLinear(4, 2, kernel_quantizer="ste_sign", rng=np.random.default_rng(0))
        >>> layer(np.ones((3, 4))).shape
        (3, 2)
        >>> layer.kernel_precision, layer.input_precision
        (1, None)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, input_quantizer=None,
                 kernel_quantizer=None, kernel_constraint=None, weight_scale: Optional[str] = None,
                 alpha_init: str = "median", weight_init: InitSpec = "glorot_uniform", bias_init: InitSpec = "zeros",
                 rng: Optional[np.random.Generator] = None, dtype=np.float32, use_kernel: Optional[bool] = None):
        super().__init__(in_features, out_features, bias=bias, weight_init=weight_init, bias_init=bias_init,
                         rng=rng, dtype=dtype)
        self._setup_quantization(input_quantizer, kernel_quantizer, kernel_constraint, weight_scale, alpha_init,
                                 use_kernel)

    def forward(self, x) -> Tensor:
        """y = q_in(x) @ (α·q_w(W))ᵀ + b, on the XNOR-popcount kernel when ``kernel_active``."""
        self.check_input(x)
        return F.linear(self.input_operand(x), self.weight_operand(), self.bias, use_kernel=self.kernel_active)

    def _signature(self) -> str:
        return f"{type(self).__name__}(in_features={self.in_features})"

    def extra_repr(self) -> str:
        return super().extra_repr() + self._quant_repr()


class QuantConv2d(_Quantized, Conv2d):
    """Quantized 2-D convolution:  y = q_in(x) ⋆ (α·q_w(W)) + b, padding with ``pad_values``  (Larq's QuantConv2D).

    Args:
        in_channels, out_channels, kernel_size, stride, padding, bias: as for :class:`minibnn.layers.Conv2d`.
        input_quantizer, kernel_quantizer, kernel_constraint, weight_scale, alpha_init, use_kernel: as for
            :class:`QuantLinear`.
        pad_values: the value of the padded border, applied *after* the input quantizer (default 0.0; use 1.0
            or -1.0 to keep a binary input binary at the border), on every padded side, ``padding="same"``'s
            uneven ones included. ``pad_value`` (the name
            :class:`~minibnn.layers.Conv2d` uses) is accepted too; give one or the other.
        weight_init: default "glorot_uniform" (fan_in = in_channels·kh·kw, fan_out = out_channels·kh·kw).
        bias_init: default "zeros".  rng, dtype: as for Conv2d.

    Example:
        >>> conv = QuantConv2d(2, 3, 3, padding=1, input_quantizer="ste_sign", kernel_quantizer="ste_sign",
        ...                    pad_values=1.0, rng=np.random.default_rng(0))
        >>> conv(np.ones((1, 2, 5, 5))).shape
        (1, 3, 5, 5)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, bias: bool = True,
                 input_quantizer=None, kernel_quantizer=None, kernel_constraint=None,
                 weight_scale: Optional[str] = None, alpha_init: str = "median", pad_values: Optional[float] = None,
                 pad_value: Optional[float] = None, weight_init: InitSpec = "glorot_uniform",
                 bias_init: InitSpec = "zeros", rng: Optional[np.random.Generator] = None, dtype=np.float32,
                 use_kernel: Optional[bool] = None):
        if pad_values is not None and pad_value is not None and pad_values != pad_value:
            raise ValueError(f"{type(self).__name__}: got pad_values={pad_values!r} and pad_value={pad_value!r}; "
                             f"give one of them (pad_values is Larq's name, pad_value the name of Conv2d)")
        pad = pad_values if pad_values is not None else (pad_value if pad_value is not None else 0.0)
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias,
                         pad_value=pad, weight_init=weight_init, bias_init=bias_init, rng=rng, dtype=dtype)
        self._setup_quantization(input_quantizer, kernel_quantizer, kernel_constraint, weight_scale, alpha_init,
                                 use_kernel)

    def forward(self, x) -> Tensor:
        """y = q_in(x) ⋆ (α·q_w(W)) + b, padded with ``pad_values``, on the XNOR-popcount kernel when
        ``kernel_active``."""
        self.check_input(x)
        return F.conv2d(self.input_operand(x), self.weight_operand(), self.bias, self.stride, self.padding,
                        self.pad_value, use_kernel=self.kernel_active)

    @property
    def pad_values(self) -> float:
        """The value of the padded border (Larq's name for ``pad_value``)."""
        return self.pad_value

    def _signature(self) -> str:
        k = self.kernel_size
        return (f"{type(self).__name__}(in_channels={self.in_channels}, "
                f"kernel_size={k[0] if k[0] == k[1] else k})")

    def extra_repr(self) -> str:
        return super().extra_repr() + self._quant_repr()


# --------------------------------------------------------------------------------------------------------------
# BinaryNet presets
# --------------------------------------------------------------------------------------------------------------
class BinaryLinear(QuantLinear):
    """BinaryNet's fully connected layer (Hubara et al. 2016):  y = sign(x) @ sign(W)ᵀ + b.

    A :class:`QuantLinear` whose defaults are ``input_quantizer="ste_sign"``, ``kernel_quantizer="ste_sign"``
    (clipped straight-through estimator: gradient 1 on |·| <= 1) and ``kernel_constraint="weight_clip"``
    (W clipped to [-1, 1] after each step). Every other argument, and overriding these, as for QuantLinear.

    Example:
        >>> BinaryLinear(784, 256, bias=False).is_binary
        True
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, input_quantizer="ste_sign",
                 kernel_quantizer="ste_sign", kernel_constraint="weight_clip", **kwargs):
        super().__init__(in_features, out_features, bias=bias, input_quantizer=input_quantizer,
                         kernel_quantizer=kernel_quantizer, kernel_constraint=kernel_constraint, **kwargs)


class BinaryConv2d(QuantConv2d):
    """BinaryNet's convolution:  y = sign(x) ⋆ sign(W) + b, padded with +1 so the input stays binary.

    A :class:`QuantConv2d` whose defaults are ``input_quantizer="ste_sign"``, ``kernel_quantizer="ste_sign"``,
    ``kernel_constraint="weight_clip"`` and ``pad_values=1.0`` (a ±1 border keeps the product an XNOR-popcount;
    pass ``pad_values=0.0`` for zero padding). Every other argument as for QuantConv2d.

    Example:
        >>> BinaryConv2d(16, 32, 3, padding=1).pad_values
        1.0
        >>> conv = BinaryConv2d(1, 1, 3, stride=2, padding="same", bias=False)   # pads (0, 1) rows, (0, 1) cols
        >>> conv.weight.data[...] = 1.0                                          # sign(W) = +1 everywhere
        >>> conv(-np.ones((1, 1, 4, 4))).data[0, 0]   # (+1 padding pixels) - (input pixels) in each window
        array([[-9., -3.],
               [-3.,  1.]], dtype=float32)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, bias: bool = True,
                 input_quantizer="ste_sign", kernel_quantizer="ste_sign", kernel_constraint="weight_clip",
                 pad_values: Optional[float] = None, pad_value: Optional[float] = None, **kwargs):
        if pad_values is None and pad_value is None:
            pad_values = 1.0
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias,
                         input_quantizer=input_quantizer, kernel_quantizer=kernel_quantizer,
                         kernel_constraint=kernel_constraint, pad_values=pad_values, pad_value=pad_value, **kwargs)
