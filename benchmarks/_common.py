"""What the kernel benchmarks share: the thread count (set for NumPy's BLAS before NumPy is imported), the
command line, timing, and the printout of the machine. Import it before NumPy:

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _common import best_times, setup
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
os.environ["MINIBNN_NUM_THREADS"] = str(THREADS)   # the kernels' threads from import on (BLAS: setup())

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
import minibnn  # noqa: E402
from minibnn import xnor  # noqa: E402


def setup(doc: str, quick_help: str):
    """Parse ``--threads N`` and ``--quick``, give minibnn that many threads, print the machine.

    Returns (args, measured core clock in Hz)."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    args = parser.parse_args()
    assert args.threads == THREADS
    minibnn.set_num_threads(args.threads, blas=args.threads)   # kernels and BLAS alike, as every library gets
    return args, print_machine(args.threads)


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
    """Print CPU features, paths, threads, the measured core clock and NumPy's version; return the clock in Hz."""
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
