"""Binary 3x3 convolution (NHWC, packed channels) vs NumPy im2col + float32 matmul on the same ±1 data.

    python benchmarks/bench_conv.py [--threads N] [--quick]

Per layer (batch 64, 3x3, stride 1, padding 1): NumPy im2col + float32 matmul (zero padding), the binary
convolution (one-padding, the BNN default) with the float32 activations packed on every call (pack+conv) and
without (conv), the cost of exact zero padding (correction term) over one-padding, binary MACs per cycle per
core, and PyTorch's float32 conv2d when torch is importable. Every figure comes from this run, with the same
thread count for every library.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import best_time, best_times, setup  # noqa: E402  (sets the BLAS thread count first)

import numpy as np  # noqa: E402
from numpy.lib.stride_tricks import sliding_window_view  # noqa: E402

from minibnn import xnor  # noqa: E402


def numpy_conv(x: np.ndarray, w_cols: np.ndarray, kernel: int = 3, pad: int = 1) -> np.ndarray:
    """float32 NHWC convolution as im2col (a copy) + one matmul; w_cols is (KH*KW*C, O)."""
    batch, height, width, channels = x.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    windows = sliding_window_view(xp, (kernel, kernel), axis=(1, 2))          # (B, H, W, C, KH, KW)
    cols = windows.transpose(0, 1, 2, 4, 5, 3).reshape(batch * height * width, kernel * kernel * channels)
    return (cols @ w_cols).reshape(batch, height, width, -1)


def main() -> None:
    args, hz = setup(__doc__, "fewer layers and repeats")
    try:
        import torch
        torch.set_num_threads(args.threads)
    except ImportError:
        torch = None
    print(f"PyTorch           : {torch.__version__ if torch else 'not installed (comparison skipped)'}")

    layers = [(64, 16, 64), (64, 16, 128), (64, 16, 256), (64, 16, 512), (64, 32, 64), (64, 32, 128)]
    if args.quick:
        layers = [(64, 16, 128)]
    repeats = 3 if args.quick else 5
    rng = np.random.default_rng(0)
    path = xnor.active_path()
    print(f"\nbinary conv2d on {path}: batch B, HxW, C -> C channels, 3x3, stride 1, padding 1 (NHWC)")
    print(f"{'B':>3} {'HxW':>6} {'C':>4} {'numpy ms':>9} {'conv ms':>8} {'pack+conv ms':>12} {'MAC/cyc/core':>12} "
          f"{'x numpy':>8} {'x numpy (pack+conv)':>19} {'zero-pad cost':>13} {'torch ms':>9} {'x torch':>8}")
    for batch, side, channels in layers:
        x = rng.choice(np.array([-1, 1], dtype=np.float32), size=(batch, side, side, channels))
        w = rng.choice(np.array([-1, 1], dtype=np.float32), size=(channels, 3, 3, channels))
        w_cols = np.ascontiguousarray(w.reshape(channels, -1).T)
        t_np = best_time(lambda: numpy_conv(x, w_cols), max(2, repeats // 2))
        px, pw = xnor.pack(x), xnor.pack(w)
        acc = xnor.conv2d(px[:2], pw, channels, padding=1, pad_value=0)     # NumPy's conv pads with zeros
        assert np.array_equal(acc, numpy_conv(x[:2], w_cols).astype(np.int32)), "binary conv != float conv"
        t_conv, t_zero, t_full = best_times([lambda: xnor.conv2d(px, pw, channels, padding=1),
                                             lambda: xnor.conv2d(px, pw, channels, padding=1, pad_value=0),
                                             lambda: xnor.conv2d(xnor.pack(x), pw, channels, padding=1)],
                                            repeats, 0.5)
        macs = batch * side * side * channels * 9 * channels
        torch_ms, torch_ratio = "-", "-"
        if torch is not None:
            tx = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
            tw = torch.from_numpy(np.ascontiguousarray(w.transpose(0, 3, 1, 2)))
            with torch.no_grad():
                t_torch = best_time(lambda: torch.nn.functional.conv2d(tx, tw, padding=1), max(2, repeats // 2))
            torch_ms, torch_ratio = f"{t_torch * 1e3:.1f}", f"{t_torch / t_full:.1f}"
        print(f"{batch:>3} {side:>3}x{side:<2} {channels:>4} {t_np * 1e3:>9.1f} {t_conv * 1e3:>8.2f} "
              f"{t_full * 1e3:>12.2f} {macs / t_conv / hz / args.threads:>12.1f} {t_np / t_conv:>8.1f} "
              f"{t_np / t_full:>19.1f} {100 * (t_zero / t_conv - 1):>12.1f}% {torch_ms:>9} "
              f"{torch_ratio:>8}")

    # packed max-pool 2x2 on the last layer's size
    px = xnor.pack(x)
    t_pool = best_time(lambda: xnor.maxpool2d(px, 2), repeats, 0.2)
    t_fpool = best_time(lambda: x.reshape(batch, side // 2, 2, side // 2, 2, channels).max(axis=(2, 4)),
                        max(2, repeats // 2))
    print(f"\nmax-pool 2x2 of ({batch}, {side}, {side}, {channels}): packed {t_pool * 1e3:.2f} ms, NumPy float32 "
          f"{t_fpool * 1e3:.2f} ms ({t_fpool / t_pool:.1f}x)")


if __name__ == "__main__":
    main()
