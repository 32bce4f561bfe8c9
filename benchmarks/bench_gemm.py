"""Binary GEMM vs NumPy float32 matmul on the same ±1 data, measured in one run.

    python benchmarks/bench_gemm.py [--threads N] [--quick]
    python benchmarks/bench_gemm.py --crossover


Prints the CPU features, the kernel path chosen, the core clock measured by a chain of dependent multiplies,
then per shape: NumPy float32 matmul, and for every compiled path the binary GEMM with weights packed once:
on packed activations (gemm), with the float32 activations packed by a separate call first (pack, gemm), and
with the float32 activations handed to the GEMM, which packs them block by block while it computes (fused:
``xnor.gemm(a_float32, b_packed, k)``). Figures: milliseconds (best of several runs), binary
multiply-accumulates per cycle per core (of the GEMM alone), and the speed-ups over NumPy with the same number
of threads.

``--crossover`` instead times the GEMM and the convolution on 1 and 2 threads over a range of sizes (the
kernels' bar for several threads lifted), on every compiled path: where 2 threads start to win is the
``MB_PARALLEL_MIN_MACS`` of kernels/mb_internal.h.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import best_time, best_times, setup  # noqa: E402  (sets the BLAS thread count first)

import numpy as np  # noqa: E402

from minibnn import xnor  # noqa: E402


def crossover(repeats: int) -> None:
    """1 thread against 2 on growing GEMMs and convolutions, with the threads' bar lifted: the crossover."""
    from minibnn import _xnor
    rng = np.random.default_rng(0)
    sign = np.array([-1, 1], dtype=np.float32)
    paths = [p for p in xnor.available_paths() if p != "numpy"]
    print(f"\ncrossover: binary GEMM / conv on 1 and 2 threads (idle threads sleep: {_xnor.idle_threads_sleep()}; "
          f"bar now {_xnor.get_parallel_min_macs() / 1e6:.0f}M MACs)")
    print(f"{'op':>5} {'shape':>18} {'path':>7} {'MACs':>9} {'1 thread us':>12} {'2 threads us':>13} {'2t / 1t':>8}")
    shapes = [("gemm", (m, n, k)) for m, n, k in [(64, 64, 1152), (128, 128, 1152), (256, 128, 1152),
                                                 (256, 256, 1152), (512, 256, 1152), (512, 512, 1152),
                                                 (512, 512, 2304), (1024, 512, 2304)]]
    shapes += [("conv", (b, s, c)) for b, s, c in [(1, 8, 64), (4, 8, 64), (8, 8, 128), (16, 8, 128), (32, 16, 64),
                                                  (32, 16, 128)]]
    _xnor.set_parallel_min_macs(0)
    try:
        for op, shape in shapes:
            if op == "gemm":
                m, n, k = shape
                a, b = xnor.pack(rng.choice(sign, size=(m, k))), xnor.pack(rng.choice(sign, size=(n, k)))
                out, macs = np.empty((m, n), np.int32), m * n * k
                calls = [lambda t, path=path: _xnor.gemm(path, a, b, k, out, None, None, None, None, t)
                         for path in paths]
            else:
                batch, side, c = shape
                x = xnor.pack(rng.choice(sign, size=(batch, side, side, c)))
                w = xnor.pack(rng.choice(sign, size=(c, 3, 3, c)))
                out, macs = np.empty((batch * side * side, c), np.int32), batch * side * side * c * 9 * c
                calls = [lambda t, path=path: _xnor.conv2d(path, x, w, c, 1, 1, 1, 1, 1, out, None, None, None,
                                                           None, t) for path in paths]
            for path, call in zip(paths, calls):
                t1, t2 = best_times([lambda: call(1), lambda: call(2)], repeats, 0.3)
                print(f"{op:>5} {str(shape):>18} {path:>7} {macs / 1e6:>8.1f}M {t1 * 1e6:>12.1f} {t2 * 1e6:>13.1f} "
                      f"{t2 / t1:>8.2f}")
    finally:
        _xnor.set_parallel_min_macs(None)


def main() -> None:
    if "--crossover" in sys.argv:
        sys.argv.remove("--crossover")
        setup(__doc__, "fewer repeats")
        crossover(repeats=200)
        return
    args, hz = setup(__doc__, "fewer shapes and repeats")
    shapes = [(256, 256, 576), (256, 256, 1152), (256, 256, 2304), (256, 256, 4608), (512, 512, 4608),
              (1024, 1024, 4608)]
    if args.quick:
        shapes = [(256, 256, 576), (256, 256, 4608)]
    repeats = 5 if args.quick else 15
    paths = [p for p in xnor.available_paths() if p != "numpy"]
    rng = np.random.default_rng(0)

    print("\nbinary GEMM: out[m, n] = sum_k a[m, k] b[n, k] on ±1 data; weights packed once; activations packed "
          "per call, by a separate pack (pack, gemm) or inside the GEMM (fused)")
    print(f"{'M':>5} {'N':>5} {'K':>5} {'path':>7} {'numpy f32 ms':>12} {'gemm ms':>9} {'pack,gemm ms':>12} "
          f"{'fused ms':>9} {'MAC/cyc/core':>12} {'x numpy':>8} {'x (pack,gemm)':>13} {'x (fused)':>9}")
    for m, n, k in shapes:
        a = rng.choice(np.array([-1, 1], dtype=np.float32), size=(m, k))
        b = rng.choice(np.array([-1, 1], dtype=np.float32), size=(n, k))
        b_t = np.ascontiguousarray(b.T)
        t_np = best_time(lambda: a @ b_t, repeats, 0.3)
        pb = xnor.pack(b)
        for path in paths:
            with xnor.use_path(path):
                pa = xnor.pack(a)
                assert np.array_equal(xnor.gemm(pa, pb, k), (a @ b_t).astype(np.int32))
                assert np.array_equal(xnor.gemm(a, pb, k), (a @ b_t).astype(np.int32))
                t_gemm, t_full, t_fused = best_times([lambda: xnor.gemm(pa, pb, k),
                                                      lambda: xnor.gemm(xnor.pack(a), pb, k),
                                                      lambda: xnor.gemm(a, pb, k)], repeats, 0.5)
            macs_per_cycle = m * n * k / t_gemm / hz / args.threads
            print(f"{m:>5} {n:>5} {k:>5} {path:>7} {t_np * 1e3:>12.3f} {t_gemm * 1e3:>9.3f} {t_full * 1e3:>12.3f} "
                  f"{t_fused * 1e3:>9.3f} {macs_per_cycle:>12.1f} {t_np / t_gemm:>8.1f} {t_np / t_full:>13.1f} "
                  f"{t_np / t_fused:>9.1f}")
    print(f"\nNumPy float32 matmul at the last shape: {m * n * k / t_np / 1e9 / args.threads:.1f} GMAC/s per core")

    # fused output transforms on the best path: int32, float32 scale/bias (BatchNorm folded), packed threshold
    m, n, k = (256, 256, 576) if args.quick else (512, 512, 1152)
    a = xnor.pack(rng.choice(np.array([-1, 1], dtype=np.float32), size=(m, k)))
    b = xnor.pack(rng.choice(np.array([-1, 1], dtype=np.float32), size=(n, k)))
    scale, bias = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    threshold, direction = xnor.fold_threshold(scale, bias, k)
    t_int, t_flt, t_bit = best_times([lambda: xnor.gemm(a, b, k), lambda: xnor.gemm(a, b, k, scale=scale, bias=bias),
                                      lambda: xnor.gemm(a, b, k, threshold=threshold, direction=direction)],
                                     repeats, 0.5)
    print(f"\nfused outputs on {xnor.active_path()} at M=N={m}, K={k}: int32 {t_int * 1e3:.3f} ms, "
          f"float32 scale+bias {t_flt * 1e3:.3f} ms ({100 * (t_flt / t_int - 1):+.1f}%), "
          f"packed threshold {t_bit * 1e3:.3f} ms ({100 * (t_bit / t_int - 1):+.1f}%)")

    # packing float32 activations
    x = rng.standard_normal((1024, 4608)).astype(np.float32)
    t_pack = best_time(lambda: xnor.pack(x), repeats, 0.2)
    print(f"packing float32 -> bits on {xnor.active_path()}: {x.nbytes / t_pack / 1e9:.1f} GB/s of input")


if __name__ == "__main__":
    main()
