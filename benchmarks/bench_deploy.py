"""Packed inference (minibnn.deploy) against the float eval forward of the same model in minibnn.

    python benchmarks/bench_deploy.py [--threads N] [--quick]

Models (random weights; random BatchNorm statistics, so that thresholds point both ways):

* vgg-small (Kim et al. 2021) at CIFAR size, 32x32x3 input, batch 64: 64C3-64C3-MP2-128C3-128C3-MP2-512FC-512FC-10;
* BinaryNet's MLP, 784-4096x3-10 (bnn_mlp), batch 64.

For each: the float forward in eval mode under no_grad (every layer as minibnn runs it in training, the
quantizers included), the frozen packed model (first and last layers float, bits in between), their ratio,
a check that both give the same logits, and the bytes of the binary layers as float32 and packed (weights,
thresholds, scales) with their ratio (the bar: at most 1/25). Same thread count for minibnn and NumPy's BLAS.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import best_times, setup  # noqa: E402  (sets the BLAS thread count first)

import numpy as np  # noqa: E402

from minibnn import deploy, models, no_grad, xnor  # noqa: E402
from minibnn.layers import BatchNorm1d, BatchNorm2d  # noqa: E402


def trained_looking(model, rng):
    """Random running statistics and affine parameters in every BatchNorm (γ of both signs)."""
    for m in model.modules():
        if isinstance(m, (BatchNorm1d, BatchNorm2d)):
            c = m.num_features
            m.running_mean[:] = rng.normal(0, 2, c)
            m.running_var[:] = rng.uniform(1, 30, c)
            m.weight.data[:] = rng.normal(0.5, 1, c)
            m.bias.data[:] = rng.normal(0, 1, c)
    return model.eval()


def main() -> None:
    args, _ = setup(__doc__, "smaller models and fewer repeats")
    rng = np.random.default_rng(0)
    side, hidden = (16, 1024) if args.quick else (32, 4096)
    cases = [
        (f"vgg_small {side}x{side}x3, batch 64", models.vgg_small(3, 10, image_size=side, rng=rng), (3, side, side)),
        (f"bnn_mlp 784-{hidden}x3-10, batch 64", models.bnn_mlp(784, 10, hidden_units=hidden, rng=rng), (784,)),
    ]
    repeats = 2 if args.quick else 5
    print(f"\npacked inference on {xnor.active_path()} vs the float eval forward (no_grad) of the same model")
    print(f"{'model':<34} {'float ms':>9} {'packed ms':>10} {'x float':>8} {'same logits':>12} "
          f"{'binary f32 B':>13} {'packed B':>10} {'size':>8}")
    for name, model, shape in cases:
        model = trained_looking(model, rng)
        packed = deploy.freeze(model, shape)
        x = rng.standard_normal((64,) + shape).astype(np.float32)

        def float_forward():
            with no_grad():
                return model(x).data

        same = np.array_equal(packed(x), float_forward())
        t_float, t_packed = best_times([float_forward, lambda: packed(x)], repeats, 1.0)
        report = packed.size_report(print_fn=None)
        print(f"{name:<34} {t_float * 1e3:>9.1f} {t_packed * 1e3:>10.2f} {t_float / t_packed:>8.1f} "
              f"{str(same):>12} {report.binary_float32_bytes:>13,} {report.binary_packed_bytes:>10,} "
              f"{'1/%.1f' % (1 / report.binary_ratio):>8}")
    print("\nsize of the last model, per binary layer:")
    packed.size_report()


if __name__ == "__main__":
    main()
