"""One training step of a binary network with the binary layers' forward on the XNOR kernels, and without.

    python benchmarks/bench_train_binary.py [--threads N] [--quick]

Larq trains binary networks with fake quantization: the forward multiplies ±1 values as floats, and bit-packed
kernels only run after conversion. minibnn's binary layers run their training forward on the kernels
(minibnn.xnor.backend) with the same numbers and gradients; the backward stays two float products per layer. This
measures what that buys per step (forward, backward, Adam step and weight clipping, cross-entropy loss):

* BinaryNet's MLP, 784-2048x3-10 (bnn_mlp, hidden_units=2048), batch 100;
* a binary CNN, vgg-small at CIFAR size (32x32x3; width 0.5: 32-32-64-64 channels, fc 256-256), batch 32.

Each row: the best step time (and its forward part) with the kernels off and on, and the ratios; then what
the kernels replace, alone: the forward products of the binary layers (float matmul / im2col conv against
pack + XNOR-popcount, on ±1 data of the same shapes, saving what the backward needs in both), and, for scale,
the time the binary layers spend in their weight quantizer (sign(W) with its STE mask), which both modes pay.
Every figure comes from this run, with the same thread count for minibnn and NumPy's BLAS (default 1).
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import best_times, setup  # noqa: E402  (sets the BLAS thread count first)

import numpy as np  # noqa: E402

from minibnn import models, no_grad, xnor  # noqa: E402
from minibnn.xnor import backend  # noqa: E402
from minibnn import functional as F  # noqa: E402
from minibnn.constraints import apply_constraints  # noqa: E402
from minibnn.optim import Adam  # noqa: E402
from minibnn.quantized import QuantConv2d  # noqa: E402


def step_functions(make_model, x, y):
    """(full training step, forward only) for a fresh model whose binary layers follow the global switch."""
    model = make_model()
    opt = Adam(model.parameters(), lr=1e-3)

    def step():
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        apply_constraints(model)

    def forward():
        with no_grad():
            model(x)

    return step, forward


def binary_products(make_model, x):
    """(float forward products, kernel forward products, weight quantizers) of the model's binary layers: three
    functions, each running its part for every binary layer on ±1 data of the layer's shapes."""
    model = make_model()
    layers = [m for m in model.modules() if getattr(m, "is_binary", False)]
    shapes = {}
    removers = [m.register_forward_hook(lambda mod, inp, out: shapes.__setitem__(id(mod), inp[0].shape))
                for m in layers]
    with no_grad():
        model(x)
    for remove in removers:
        remove()
    rng = np.random.default_rng(0)
    work = []
    for m in layers:
        xs = np.where(rng.random(shapes[id(m)]) < 0.5, -1.0, 1.0).astype(np.float32)
        with no_grad():
            w = m.weight_operand().data
        conv = isinstance(m, QuantConv2d)
        options = dict(stride=m.stride, padding=m.padding, pad_value=m.pad_value) if conv else {}
        work.append((xs, w, options, F.Conv2dFn if conv else F.LinearFn))

    def run(which):
        def products():
            for xs, w, options, fn in work:
                ctx = fn()
                ctx.needs_input_grad = (True, True)      # keep what the backward needs, as in training
                ctx.forward(xs, w, **options, use_kernel=which == "kernel")
        return products

    def quantize():
        with no_grad():
            for m in layers:
                m.weight_operand()

    return run("float"), run("kernel"), quantize


def with_kernels(enabled, fn):
    def run():
        with backend.use_kernels(enabled):
            fn()
    return run


def main() -> None:
    args, _ = setup(__doc__, "smaller models and fewer repeats")
    rng = np.random.default_rng(0)
    hidden, side = (512, 16) if args.quick else (2048, 32)
    cases = [
        (f"bnn_mlp 784-{hidden}x3-10, batch 100",
         lambda: models.bnn_mlp(784, 10, hidden_units=hidden, rng=np.random.default_rng(0)),
         rng.standard_normal((100, 784)).astype(np.float32), rng.integers(0, 10, 100)),
        (f"vgg_small {side}x{side}x3 width 0.5, batch 32",
         lambda: models.vgg_small(3, 10, image_size=side, width=0.5, fc_units=(256, 256),
                                  rng=np.random.default_rng(0)),
         rng.standard_normal((32, 3, side, side)).astype(np.float32), rng.integers(0, 10, 32)),
    ]
    repeats = 2 if args.quick else 6
    print(f"\ntraining step = forward + cross-entropy + backward + Adam + weight clip; binary layers' forward on "
          f"the kernels ({xnor.active_path()}) or as float matmuls")
    print(f"{'model':<40} {'off: step ms':>12} {'(forward)':>10} {'on: step ms':>12} {'(forward)':>10} "
          f"{'step x':>7} {'forward x':>9}")
    details = []
    for name, make, x, y in cases:
        step_off, fwd_off = step_functions(make, x, y)
        step_on, fwd_on = step_functions(make, x, y)
        t_off, t_on, f_off, f_on = best_times([with_kernels(False, step_off), with_kernels(True, step_on),
                                               with_kernels(False, fwd_off), with_kernels(True, fwd_on)],
                                              repeats, 1.0)
        print(f"{name:<40} {t_off * 1e3:>12.1f} {f_off * 1e3:>10.1f} {t_on * 1e3:>12.1f} {f_on * 1e3:>10.1f} "
              f"{t_off / t_on:>7.2f} {f_off / f_on:>9.2f}")
        float_products, kernel_products, quantize = binary_products(make, x)
        p_float, p_kernel, t_quant = best_times([float_products, kernel_products, quantize], repeats, 0.5)
        details.append(f"{name:<40} binary products: float {p_float * 1e3:.1f} ms, kernels {p_kernel * 1e3:.1f} ms "
                       f"({p_float / p_kernel:.1f}x); weight quantizers {t_quant * 1e3:.1f} ms")
    print("\nwhat the kernels replace, per forward (the rest of a step is the same in both modes):")
    for line in details:
        print(line)


if __name__ == "__main__":
    main()
