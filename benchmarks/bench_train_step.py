"""Benchmark: one training step of an MLP 784-2048-2048-10 (BatchNorm1d + Hardtanh), batch 100, Adam, one thread.

Prints the median time of a step (forward, loss, backward, Adam update) for minibnn after a warm-up, split into
its phases, and the same for PyTorch when it is importable (``pip install torch``; never a dependency), with the
ratio minibnn / PyTorch measured in this run. ``--profile`` adds the top functions of a cProfile run.

Run:  python benchmarks/bench_train_step.py [--steps 30] [--warmup 5] [--profile]
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
             "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"  # before NumPy (and its BLAS) is imported: one thread, as the comparison needs

import argparse  # noqa: E402
import cProfile  # noqa: E402
import io  # noqa: E402
import pstats  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import minibnn  # noqa: E402
from minibnn import Sequential, Tensor  # noqa: E402
from minibnn.layers import BatchNorm1d, Hardtanh, Linear  # noqa: E402
from minibnn.losses import CrossEntropyLoss  # noqa: E402
from minibnn.optim import Adam  # noqa: E402

SIZES = (784, 2048, 2048, 10)
BATCH = 100


def make_data(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((BATCH, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], size=BATCH)
    return x, y


def minibnn_model():
    layers = []
    for i, (n_in, n_out) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        layers.append(Linear(n_in, n_out))
        if i < len(SIZES) - 2:
            layers += [BatchNorm1d(n_out), Hardtanh()]
    return Sequential(*layers)


def median_ms(times) -> float:
    return 1e3 * float(np.median(times))


PHASES = ("forward+loss", "backward", "adam step", "total")


def timed_step(forward_loss, optimizer, phases=None) -> None:
    """One training step (the loss from forward_loss(), its backward, the optimizer's step), the same for minibnn
    and PyTorch; when `phases` (a list per name of PHASES) is given, each phase's time is appended to it."""
    t0 = time.perf_counter()
    loss = forward_loss()
    t1 = time.perf_counter()
    optimizer.zero_grad()
    loss.backward()
    t2 = time.perf_counter()
    optimizer.step()
    t3 = time.perf_counter()
    if phases is not None:
        for name, dt in zip(PHASES, (t1 - t0, t2 - t1, t3 - t2, t3 - t0)):
            phases[name].append(dt)


def bench_minibnn(steps: int, warmup: int, profile: bool):
    minibnn.manual_seed(0)
    model = minibnn_model()
    optimizer = Adam(model.parameters(), lr=1e-3)
    loss_fn = CrossEntropyLoss()
    x_np, y = make_data()
    phases = {name: [] for name in PHASES}

    def step(record: bool):
        timed_step(lambda: loss_fn(model(Tensor(x_np)), y), optimizer, phases if record else None)

    for _ in range(warmup):
        step(False)
    for _ in range(steps):
        step(True)
    n_params = sum(p.size for p in model.parameters())
    report = None
    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(steps):
            step(False)
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(18)
        report = out.getvalue()
    return n_params, {k: median_ms(v) for k, v in phases.items()}, report


def bench_torch(steps: int, warmup: int):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    torch.manual_seed(0)
    layers = []
    for i, (n_in, n_out) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        layers.append(torch.nn.Linear(n_in, n_out))
        if i < len(SIZES) - 2:
            layers += [torch.nn.BatchNorm1d(n_out), torch.nn.Hardtanh()]
    model = torch.nn.Sequential(*layers)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)  # PyTorch's default implementation on CPU
    loss_fn = torch.nn.CrossEntropyLoss()
    x_np, y_np = make_data()
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
    phases = {name: [] for name in PHASES}
    for i in range(warmup + steps):
        timed_step(lambda: loss_fn(model(x), y), optimizer, phases if i >= warmup else None)
    return torch.__version__, {k: median_ms(v) for k, v in phases.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="measured steps (default 30)")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured steps first (default 5)")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of the minibnn steps")
    args = parser.parse_args(argv)

    print(f"MLP {'-'.join(map(str, SIZES))}, BatchNorm1d + Hardtanh, batch {BATCH}, Adam, 1 thread; "
          f"median of {args.steps} steps after {args.warmup} warm-up steps; NumPy {np.__version__}")
    n_params, ours, report = bench_minibnn(args.steps, args.warmup, args.profile)
    print(f"parameters: {n_params}")
    theirs = bench_torch(args.steps, args.warmup)
    header = f"{'phase':<14}{'minibnn ms':>12}"
    if theirs is not None:
        header += f"{'PyTorch ms':>12}{'ratio':>8}"
    print(header)
    for name, ms in ours.items():
        line = f"{name:<14}{ms:>12.2f}"
        if theirs is not None:
            line += f"{theirs[1][name]:>12.2f}{ms / theirs[1][name]:>8.2f}"
        print(line)
    if theirs is None:
        print("PyTorch not importable: no comparison (pip install torch to compare)")
    else:
        print(f"minibnn / PyTorch {theirs[0]} per step: {ours['total'] / theirs[1]['total']:.2f}x")
    if report:
        print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
