"""``minibnn.summary(model, input_shape)``: what a binary network costs — parameters per bit width, memory, MACs.

Per layer and in total:

* **numbers per bit width**: a weight whose layer has a 1-bit ``kernel_quantizer`` counts as 1-bit (a k-bit
  quantizer: k-bit); everything else (biases, BatchNorm's γ and β and running statistics, scales α,
  full-precision layers, trainable quantizer parameters) counts as 32-bit. Buffers count with the parameters
  (as "numbers"), since a deployed model stores them too.
* **which weights are which**: the 1-bit numbers are *latent* float weights (``layer.weight``, trained and
  checkpointed as floats); the forward pass uses their quantized values (``layer.quantized_weight()``), and a
  deployed model stores only those, at 1 bit each. The float32 memory is what training holds; the packed
  memory is what deployment needs.
* **memory**: as float32 (4 bytes per number) and packed (bits/8 bytes per number; bit-packing pads each row
  of K weights to a whole number of 64-bit words, which this ignores).
* **MACs per sample** (multiply-accumulates of Linear and Conv2d layers, one sample): each output element of
  a layer costs fan_in MACs (in_features, or in_channels·kh·kw). A MAC's precision is the wider of its two
  operands' (input quantizer, kernel quantizer; 32 for full precision), as in Larq: a 1-bit MAC needs both a
  1-bit input and a 1-bit weight, and is what an XNOR-popcount kernel computes. The output shapes come from
  one forward pass on a zero input of shape (1, \\*input_shape), in evaluation mode and without a graph.

Example:
    >>> from minibnn import Sequential
    >>> from minibnn.layers import BatchNorm1d, Linear
    >>> from minibnn.quantized import BinaryLinear
    >>> model = Sequential(Linear(4, 8), BatchNorm1d(8), BinaryLinear(8, 3, bias=False))
    >>> s = summary(model, (4,), print_fn=None)
    >>> s.params_by_bits          # 1-bit: 8·3 latent weights; 32-bit: 4·8 + 8, BatchNorm 4·8
    {1: 24, 32: 72}
    >>> s.macs_by_bits            # Linear(4, 8): 32 float MACs; BinaryLinear(8, 3): 24 binary MACs
    {1: 24, 32: 32}
    >>> round(s.compression_ratio, 2)   # 96·32 bits / (24·1 + 72·32 bits)
    1.32
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .layers import Conv2d, Linear
from .module import Module
from .quantizers import Quantizer
from .tensor import FLOAT_DTYPES, Tensor, no_grad

__all__ = ["LayerSummary", "Summary", "summary"]

FLOAT_BITS = 32
#: attribute names of a layer's own quantizers: their parameters are counted with the layer
_LAYER_QUANTIZERS = ("input_quantizer", "kernel_quantizer")


def _bits(quantizer) -> int:
    precision = None if quantizer is None else getattr(quantizer, "precision", None)
    return FLOAT_BITS if precision is None else int(precision)


def _add(table: Dict[int, int], bits: int, count: int) -> None:
    table[bits] = table.get(bits, 0) + int(count)


@dataclass
class LayerSummary:
    """One row of a :class:`Summary`.

    Attributes:
        name: the dotted module name (as in ``model.named_modules()``).
        kind: the module's class name.
        numbers: bit width -> how many parameters and buffer entries of that width the layer holds.
        macs: bit width -> MACs per sample (empty for layers that are not Linear or Conv2d).
        input_bits, kernel_bits: the precision of the product's operands (None for non-MAC layers).
        output_shape: the output shape of one sample (None if the layer did not run).
    """

    name: str
    kind: str
    numbers: Dict[int, int] = field(default_factory=dict)
    macs: Dict[int, int] = field(default_factory=dict)
    input_bits: Optional[int] = None
    kernel_bits: Optional[int] = None
    output_shape: Optional[Tuple[int, ...]] = None

    @property
    def packed_bits(self) -> int:
        """Bits needed to store the layer with each number at its bit width."""
        return sum(bits * n for bits, n in self.numbers.items())

    @property
    def float32_bytes(self) -> int:
        """Bytes needed to store every number as float32."""
        return 4 * sum(self.numbers.values())


@dataclass
class Summary:
    """What :func:`summary` returns: the rows and the totals; ``str(summary)`` is the table.

    Attributes:
        layers: one :class:`LayerSummary` per layer holding parameters or buffers or computing MACs.
        input_shape: the per-sample input shape used.
        params_by_bits: bit width -> total numbers (parameters and buffers) of that width.
        macs_by_bits: bit width -> total MACs per sample of that precision.
    """

    layers: List[LayerSummary]
    input_shape: Tuple[int, ...]
    params_by_bits: Dict[int, int]
    macs_by_bits: Dict[int, int]

    @property
    def total_params(self) -> int:
        return sum(self.params_by_bits.values())

    @property
    def total_macs(self) -> int:
        return sum(self.macs_by_bits.values())

    @property
    def float32_bytes(self) -> int:
        """Memory with every number as float32 (what training holds)."""
        return 4 * self.total_params

    @property
    def packed_bytes(self) -> float:
        """Memory with every number at its bit width (what a deployed model needs), in bytes."""
        return sum(bits * n for bits, n in self.params_by_bits.items()) / 8

    @property
    def compression_ratio(self) -> float:
        """float32 memory / packed memory (1 for a full-precision model; at most 32)."""
        return self.float32_bytes / self.packed_bytes if self.packed_bytes else 1.0

    @property
    def binary_mac_fraction(self) -> float:
        """The fraction of MACs that are 1-bit (XNOR-popcount); NaN without MACs."""
        return self.macs_by_bits.get(1, 0) / self.total_macs if self.total_macs else float("nan")

    def table(self) -> str:
        """The per-layer table, the totals and a note on latent vs binary weights, as text."""
        pbits = sorted(self.params_by_bits)
        mbits = sorted(self.macs_by_bits)
        header = (["Layer", "Type", "In bits", "W bits", "Output"] + [f"{b}-bit #" for b in pbits]
                  + ["Packed"] + [f"{b}-bit MACs" for b in mbits])
        rows = []
        for layer in self.layers:
            rows.append([layer.name or "(model)", layer.kind,
                         "-" if layer.input_bits is None else str(layer.input_bits),
                         "-" if layer.kernel_bits is None else str(layer.kernel_bits),
                         "-" if layer.output_shape is None else str(layer.output_shape)]
                        + [f"{layer.numbers.get(b, 0):,}" for b in pbits] + [_fmt_bytes(layer.packed_bits / 8)]
                        + [f"{layer.macs.get(b, 0):,}" for b in mbits])
        total = (["Total", "", "", "", ""] + [f"{self.params_by_bits[b]:,}" for b in pbits]
                 + [_fmt_bytes(self.packed_bytes)] + [f"{self.macs_by_bits[b]:,}" for b in mbits])
        widths = [max(len(r[i]) for r in [header, total] + rows) for i in range(len(header))]

        def line(cells):
            return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

        rule = "-" * len(line(header))
        out = [line(header), rule] + [line(r) for r in rows] + [rule, line(total), ""]
        counts = ", ".join(f"{b}-bit {n:,}" for b, n in sorted(self.params_by_bits.items()))
        out.append(f"Numbers (parameters and buffers): {self.total_params:,} ({counts})")
        out.append(f"Memory: {_fmt_bytes(self.float32_bytes)} as float32, {_fmt_bytes(self.packed_bytes)} packed "
                   f"(compression ratio {self.compression_ratio:.2f}x)")
        if self.total_macs:
            macs = ", ".join(f"{b}-bit {n:,}" for b, n in sorted(self.macs_by_bits.items()))
            out.append(f"MACs per sample: {self.total_macs:,} ({macs}); binary fraction "
                       f"{self.binary_mac_fraction:.4f}")
        if any(b < FLOAT_BITS for b in self.params_by_bits):
            out.append("Low-bit numbers are latent float weights (layer.weight, trained as float32) whose quantized "
                       "values (layer.quantized_weight()) the forward pass uses and a deployed model stores.")
        return "\n".join(out)

    def __str__(self) -> str:
        return self.table()


def _fmt_bytes(n: float) -> str:
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n:g} B"


def _is_folded(name: str, folded: Sequence[str]) -> bool:
    return any(name == f or name.startswith(f + ".") for f in folded)


def _layer_numbers(module: Module) -> Dict[int, int]:
    """Bit width -> count of the module's own parameters and float buffers, plus its quantizers' parameters."""
    numbers: Dict[int, int] = {}
    kernel_bits = _bits(getattr(module, "kernel_quantizer", None))
    for attr, p in module._parameters.items():
        _add(numbers, kernel_bits if attr == "weight" and getattr(module, "kernel_quantizer", None) is not None
             else FLOAT_BITS, p.size)
    for attr in module._buffers:
        value = getattr(module, attr)
        if isinstance(value, np.ndarray) and value.dtype in FLOAT_DTYPES:
            _add(numbers, FLOAT_BITS, value.size)
    for attr in _LAYER_QUANTIZERS:
        quantizer = getattr(module, attr, None)
        if isinstance(quantizer, Module):
            for p in quantizer.parameters():
                _add(numbers, FLOAT_BITS, p.size)
    return numbers


def summary(model: Module, input_shape: Sequence[int], print_fn: Optional[Callable[[str], None]] = print
            ) -> Summary:
    """Count a model's numbers per bit width, its memory and its MACs per precision, and print a table.

    Args:
        model: the module.
        input_shape: the shape of ONE sample, without the batch axis: ``(784,)`` for an MLP, ``(1, 28, 28)``
            for a CNN on MNIST. A zero batch of shape (1, \\*input_shape) is run through the model (in evaluation
            mode, without a graph; the model's modes are restored) to find each layer's output shape.
        print_fn: called with the table (default ``print``); None prints nothing.

    Returns:
        A :class:`Summary` (``str()`` of it is the table).
    """
    if not isinstance(model, Module):
        raise TypeError(f"summary: model must be a minibnn Module, got {type(model).__name__}")
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    if not shape or not all(isinstance(d, numbers.Integral) and not isinstance(d, bool) and d > 0 for d in shape):
        raise ValueError(f"summary: input_shape must be the non-empty shape of one sample (no batch axis), a tuple "
                         f"of positive ints such as (784,) or (1, 28, 28); got {input_shape!r}")
    shape = tuple(int(d) for d in shape)

    named = list(model.named_modules())
    folded = [name for name, m in named if isinstance(m, Quantizer) and name.split(".")[-1] in _LAYER_QUANTIZERS]
    rows: List[LayerSummary] = []
    hooks = []
    for name, module in named:
        if _is_folded(name, folded):
            continue
        is_mac = isinstance(module, (Linear, Conv2d))
        numbers_ = _layer_numbers(module)
        if not numbers_ and not is_mac:
            continue
        row = LayerSummary(name=name, kind=type(module).__name__, numbers=numbers_)
        if is_mac:
            row.input_bits = _bits(getattr(module, "input_quantizer", None))
            row.kernel_bits = _bits(getattr(module, "kernel_quantizer", None))
        hooks.append(module.register_forward_hook(_recorder(row, is_mac)))
        rows.append(row)

    modes = [(m, m.training) for _, m in named]
    dtype = next((p.dtype for p in model.parameters()), np.dtype(np.float32))
    try:
        model.eval()
        with no_grad():
            model(Tensor(np.zeros((1,) + shape, dtype=dtype)))
    finally:
        for remove in hooks:
            remove()
        for m, mode in modes:
            object.__setattr__(m, "training", mode)

    params_by_bits: Dict[int, int] = {}
    macs_by_bits: Dict[int, int] = {}
    for row in rows:
        for bits, n in row.numbers.items():
            _add(params_by_bits, bits, n)
        for bits, n in row.macs.items():
            _add(macs_by_bits, bits, n)
    result = Summary(rows, shape, dict(sorted(params_by_bits.items())), dict(sorted(macs_by_bits.items())))
    if print_fn is not None:
        print_fn(result.table())
    return result


def _recorder(row: LayerSummary, is_mac: bool):
    """A forward hook recording the output shape of one sample and, for a Linear or Conv2d, adding its MACs
    (output elements × fan_in) to ``row``."""

    def record(module, inputs, output):
        if not hasattr(output, "shape"):
            return
        out_shape = tuple(output.shape)
        row.output_shape = out_shape[1:]
        if is_mac:
            fan_in = int(np.prod(module.weight.shape[1:]))
            _add(row.macs, max(row.input_bits, row.kernel_bits), int(np.prod(out_shape[1:])) * fan_in)

    return record
