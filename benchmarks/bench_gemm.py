"""Binary GEMM vs NumPy float32 matmul on the same ±1 data, measured in one run.

    python benchmarks/bench_gemm.py [--threads N] [--quick]

Prints the CPU features, the kernel path chosen, the core clock measured by a chain of dependent multiplies,
then per shape: NumPy float32 matmul, and for every compiled path the binary GEMM with weights packed once:
on packed activations (gemm), with the float32 activations packed by a separate call first (pack, gemm), and
with the float32 activations handed to the GEMM, which packs them block by block while it computes (fused:
``xnor.gemm(a_float32, b_packed, k)``). Figures: milliseconds (best of several runs), binary
multiply-accumulates per cycle per core (of the GEMM alone), and the speed-ups over NumPy with the same number
of threads.
"""
from __future__ import annotations

import os
import sys


def threads_from_argv(argv) -> int:
    """--threads N, read before NumPy is imported so that its BLAS gets the same thread count."""
    for i, arg in enumerate(argv):
        if arg == "--threads" and i + 1 < len(argv):
            return int(argv[i + 1])
        if arg.startswith("--threads="):
            return int(arg.split("=", 1)[1])
    return 1


THREADS = threads_from_argv(sys.argv)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ[_var] = str(THREADS)

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
from minibnn import xnor  # noqa: E402


def best_times(fns, repeats: int, min_seconds: float = 0.0):
    """The fastest run of each function (after one warm-up), running them in turns so that a busy moment of the
    machine slows all of them alike; the minimum is the run least disturbed by other processes."""
    for fn in fns:
        fn()
    best, start = [float("inf")] * len(fns), time.perf_counter()
    for i in range(10**6):
        for j, fn in enumerate(fns):
            t = time.perf_counter()
            fn()
            best[j] = min(best[j], time.perf_counter() - t)
        if i + 1 >= repeats and time.perf_counter() - start >= min_seconds:
            break
    return best


def best_time(fn, repeats: int, min_seconds: float = 0.0) -> float:
    return best_times([fn], repeats, min_seconds)[0]


def core_clock_hz(tries: int = 15) -> float:
    """The core clock, turbo included: the fastest of several timed runs of a known number of cycles."""
    try:
        from minibnn import _xnor
    except ImportError:
        return float("nan")
    best = 0.0
    for _ in range(tries):   # CPU time of this thread: time spent descheduled by other processes does not count
        t = time.thread_time()
        cycles = _xnor.clock_probe(200_000)
        best = max(best, cycles / max(time.thread_time() - t, 1e-9))
    return best if best > 0 else float("nan")


def print_machine(threads: int) -> float:
    info = xnor.kernel_info()
    features = [name for name, present in info["cpu_features"].items() if present]
    hz = core_clock_hz()
    print(f"CPU features      : {', '.join(features) or 'none detected'}")
    print(f"extension built   : {info['extension']}   OpenMP: {info['openmp']}")
    print(f"paths available   : {', '.join(info['available_paths'])}")
    print(f"path chosen       : {info['active_path']}")
    print(f"threads           : {threads} (minibnn and NumPy's BLAS)")
    print(f"core clock        : {hz / 1e9:.2f} GHz (measured: dependent multiplies, thread CPU time, best of 15)")
    print(f"NumPy             : {np.__version__}")
    return hz


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="fewer shapes and repeats")
    args = parser.parse_args()
    xnor.set_num_threads(args.threads)
    hz = print_machine(args.threads)
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
