"""Benchmark: one training step, minibnn against PyTorch, for an MLP, a float CNN and a binary CNN.

The three models (issue 9):

* ``mlp``: 784-2048-2048-10, BatchNorm1d + Hardtanh, batch 100, Adam;
* ``binary-cnn``: ``models.vgg_small(3, 10, 32, width=0.5, fc_units=(256, 256))`` (binary hidden layers: sign
  with the clipped straight-through estimator on inputs and weights, ±1 padding, weight clipping), 32x32x3,
  batch 32, Adam, then the weight clip;
* ``float-cnn``: the same network with every binary layer replaced by ``Hardtanh`` + its float layer
  (zero padding, no clip), batch 32, Adam.

PyTorch's twin is built layer by layer from the minibnn model (``print(model)`` shows the structure) and starts
from the same weights; the script checks that both give the same first loss. Binary layers in PyTorch are a
``torch.autograd.Function`` (sign, sign(0) = +1, gradient 1 on |x| <= 1) on inputs and weights, the input padded
with the layer's ``pad_value`` after binarization, as minibnn does. Both run on the same number of threads
(``--threads``, default 1: minibnn's kernels, NumPy's BLAS and ``torch.set_num_threads``). Steps of minibnn and
PyTorch alternate, so a busy moment of the machine slows both alike; each phase (forward+loss, backward,
optimizer step) is the median over the measured steps after a warm-up. Without PyTorch (never a dependency:
``pip install torch``) the script prints minibnn alone. ``--profile`` adds the top functions of a cProfile run
of minibnn's steps.

Run:  python benchmarks/bench_train_step.py [--models mlp,float-cnn,binary-cnn] [--steps 30] [--warmup 5]
                                             [--threads 1] [--profile]
"""
from __future__ import annotations

import os
import sys


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import THREADS  # noqa: E402  -- reads --threads, sets MINIBNN_NUM_THREADS before minibnn loads

import argparse  # noqa: E402
import cProfile  # noqa: E402
import io  # noqa: E402
import pstats  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

import minibnn  # noqa: E402
from minibnn import Sequential, Tensor, models  # noqa: E402
from minibnn.constraints import apply_constraints  # noqa: E402
from minibnn.layers import BatchNorm1d, Conv2d, Hardtanh, Linear  # noqa: E402
from minibnn.losses import CrossEntropyLoss  # noqa: E402
from minibnn.optim import Adam  # noqa: E402
from minibnn.quantized import QuantConv2d, QuantLinear  # noqa: E402

MODELS = ("mlp", "float-cnn", "binary-cnn")
PHASES = ("forward+loss", "backward", "optimizer step", "total")
MLP_SIZES, MLP_BATCH = (784, 2048, 2048, 10), 100
CNN_BATCH, CNN_SIZE = 32, 32


def set_threads(n: int) -> str:
    """Give minibnn's kernels and NumPy's BLAS n threads each, as PyTorch gets; say how."""
    minibnn.set_num_threads(n, blas=n)
    return f"minibnn.set_num_threads({n}, blas={n})"


# ---------------------------------------------------------------------------------------------------------------
# The minibnn models (public layer classes only)
# ---------------------------------------------------------------------------------------------------------------
def mlp_model() -> Sequential:
    layers = []
    for i, (n_in, n_out) in enumerate(zip(MLP_SIZES[:-1], MLP_SIZES[1:])):
        layers.append(Linear(n_in, n_out))
        if i < len(MLP_SIZES) - 2:
            layers += [BatchNorm1d(n_out), Hardtanh()]
    return Sequential(*layers)


def binary_cnn() -> Sequential:
    return models.vgg_small(3, 10, CNN_SIZE, width=0.5, fc_units=(256, 256), rng=np.random.default_rng(0))


def is_binary_layer(m) -> bool:
    return isinstance(m, (QuantConv2d, QuantLinear)) and getattr(m, "input_quantizer", None) is not None


def float_cnn() -> Sequential:
    """The binary vgg-small with each binary layer replaced by Hardtanh + the float layer of the same shape."""
    layers = []
    for m in binary_cnn():
        if isinstance(m, QuantConv2d):
            o, c, kh, kw = m.weight.shape
            conv = Conv2d(c, o, (kh, kw), stride=m.stride, padding=m.padding, bias=m.bias is not None,
                          rng=np.random.default_rng(len(layers)))
            layers += [Hardtanh(), conv]
        elif isinstance(m, QuantLinear):
            o, i = m.weight.shape
            layers += [Hardtanh(), Linear(i, o, bias=m.bias is not None, rng=np.random.default_rng(len(layers)))]
        else:
            layers.append(m)
    return Sequential(*layers)


def make_data(name: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    if name == "mlp":
        x = rng.standard_normal((MLP_BATCH, MLP_SIZES[0])).astype(np.float32)
        return x, rng.integers(0, MLP_SIZES[-1], size=MLP_BATCH)
    x = rng.standard_normal((CNN_BATCH, 3, CNN_SIZE, CNN_SIZE)).astype(np.float32)
    return x, rng.integers(0, 10, size=CNN_BATCH)


def build(name: str) -> Sequential:
    minibnn.manual_seed(0)
    return {"mlp": mlp_model, "float-cnn": float_cnn, "binary-cnn": binary_cnn}[name]()


# ---------------------------------------------------------------------------------------------------------------
# The PyTorch twin, layer by layer
# ---------------------------------------------------------------------------------------------------------------
def torch_twin(model: Sequential):
    """A torch.nn.Sequential computing what `model` computes, from the same weights (copied)."""
    import torch
    import torch.nn.functional as TF

    class SteSign(torch.autograd.Function):
        """sign(x) with sign(0) = +1; backward: grad · 1{|x| <= 1} (the clipped straight-through estimator)."""

        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * (x.abs() <= 1).to(grad.dtype)

    class BinaryConv2d(torch.nn.Conv2d):
        def __init__(self, *args, pad_value=1.0, **kwargs):
            super().__init__(*args, **kwargs)
            self.pad, self.pad_value = self.padding, pad_value

        def forward(self, x):
            ph, pw = self.pad
            xb = TF.pad(SteSign.apply(x), (pw, pw, ph, ph), value=self.pad_value)  # the border after binarizing
            return TF.conv2d(xb, SteSign.apply(self.weight), self.bias, self.stride)

    class BinaryLinear(torch.nn.Linear):
        def forward(self, x):
            return TF.linear(SteSign.apply(x), SteSign.apply(self.weight), self.bias)

    def copy(dst, src):
        for name, p in src.named_parameters():
            getattr(dst, name).data.copy_(torch.from_numpy(np.array(p.data, dtype=np.float32)))
        return dst

    out, clipped = [], []
    for m in model:
        kind = type(m).__name__
        if isinstance(m, QuantConv2d) or isinstance(m, QuantLinear):
            for q in ("input_quantizer", "kernel_quantizer"):
                quant = getattr(m, q, None)
                if quant is not None and (getattr(quant, "name", "") != "ste_sign" or quant.clip_value != 1.0):
                    raise NotImplementedError(f"no PyTorch twin for {q}={quant!r}")
            if getattr(m, "weight_scale", None) is not None:
                raise NotImplementedError("no PyTorch twin for weight_scale")
        if isinstance(m, QuantConv2d) and is_binary_layer(m):
            o, c, kh, kw = m.weight.shape
            t = BinaryConv2d(c, o, (kh, kw), stride=m.stride, padding=m.padding, bias=m.bias is not None,
                             pad_value=m.pad_value)
            clipped.append(t)
        elif isinstance(m, QuantLinear) and is_binary_layer(m):
            t = BinaryLinear(m.weight.shape[1], m.weight.shape[0], bias=m.bias is not None)
            clipped.append(t)
        elif isinstance(m, Conv2d):  # float convolution (QuantConv2d without quantizers included)
            o, c, kh, kw = m.weight.shape
            if getattr(m, "pad_value", 0.0) != 0.0:
                raise NotImplementedError("float convolution with a non-zero border")
            t = torch.nn.Conv2d(c, o, (kh, kw), stride=m.stride, padding=m.padding, bias=m.bias is not None)
        elif isinstance(m, Linear):
            t = torch.nn.Linear(m.weight.shape[1], m.weight.shape[0], bias=m.bias is not None)
        elif kind in ("BatchNorm1d", "BatchNorm2d"):
            t = getattr(torch.nn, kind)(m.weight.shape[0], eps=m.eps, momentum=m.momentum)
        elif kind == "MaxPool2d":
            t = torch.nn.MaxPool2d(m.kernel_size, m.stride, m.padding)
        elif kind == "Flatten":
            t = torch.nn.Flatten(getattr(m, "start_dim", 1))
        elif kind == "Hardtanh":
            t = torch.nn.Hardtanh(getattr(m, "min_val", -1.0), getattr(m, "max_val", 1.0))
        else:
            raise NotImplementedError(f"no PyTorch twin for {kind}")
        out.append(copy(t, m))
    return torch.nn.Sequential(*out), clipped


# ---------------------------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------------------------
CLOCK = {"wall": time.perf_counter, "cpu": time.thread_time}
clock = time.perf_counter


def timed_step(forward_loss, optimizer, after_step=None, phases=None) -> float:
    """One training step (loss, backward, optimizer step and `after_step`, e.g. the weight clip), the same for
    minibnn and PyTorch; appends each phase's time to `phases` (a dict of lists by PHASES) when given.
    Returns the loss."""
    t0 = clock()
    loss = forward_loss()
    t1 = clock()
    optimizer.zero_grad()
    loss.backward()
    t2 = clock()
    optimizer.step()
    if after_step is not None:
        after_step()
    t3 = clock()
    if phases is not None:
        for name, dt in zip(PHASES, (t1 - t0, t2 - t1, t3 - t2, t3 - t0)):
            phases[name].append(dt)
    return float(loss.item()) if hasattr(loss, "item") else float(np.asarray(loss.data))


def minibnn_step(name: str):
    model = build(name)
    optimizer = Adam(model.parameters(), lr=1e-3)
    loss_fn = CrossEntropyLoss()
    x_np, y = make_data(name)
    clip = (lambda: apply_constraints(model)) if name == "binary-cnn" else None

    def step(phases=None):
        return timed_step(lambda: loss_fn(model(Tensor(x_np)), y), optimizer, clip, phases)

    return model, step


def torch_step(model):
    import torch
    twin, clipped = torch_twin(model)
    optimizer = torch.optim.Adam(twin.parameters(), lr=1e-3)  # PyTorch's default implementation on CPU
    loss_fn = torch.nn.CrossEntropyLoss()

    def clip():
        with torch.no_grad():
            for layer in clipped:
                layer.weight.clamp_(-1.0, 1.0)

    def bind(x_np, y_np):
        x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)

        def step(phases=None):
            return timed_step(lambda: loss_fn(twin(x), y), optimizer, clip if clipped else None, phases)

        return step

    return bind


def median_ms(times) -> float:
    return 1e3 * float(np.median(times))


def bench(name: str, steps: int, warmup: int, profile: bool, torch_ok: bool):
    """{'minibnn': {phase: ms}, 'torch': {...} or None, 'params', 'first loss' pair, 'profile' text}."""
    model, ours = minibnn_step(name)
    result = {"params": sum(p.size for p in model.parameters()), "torch": None, "profile": None}
    theirs = None
    if torch_ok:
        theirs = torch_step(model)(*make_data(name))  # before the first minibnn step: the same weights
        loss_theirs = theirs()
        loss_ours = ours()
        result["first loss"] = (loss_ours, loss_theirs)
        warmup = max(warmup - 1, 0)
    times = {who: {p: [] for p in PHASES} for who in ("minibnn", "torch")}
    for _ in range(warmup):
        ours()
        if theirs:
            theirs()
    for _ in range(steps):  # alternate: a busy moment of the machine slows both alike
        ours(times["minibnn"])
        if theirs:
            theirs(times["torch"])
    result["minibnn"] = {p: median_ms(v) for p, v in times["minibnn"].items()}
    if theirs:
        result["torch"] = {p: median_ms(v) for p, v in times["torch"].items()}
    if profile:
        profiler = cProfile.Profile(clock)
        profiler.enable()
        for _ in range(steps):
            ours()
        profiler.disable()
        out = io.StringIO()
        out.write(f"cProfile of {steps} minibnn steps ({name}); per step: divide by {steps}\n")
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(22)
        result["profile"] = out.getvalue()
    return result


DESCRIPTION = {
    "mlp": f"MLP {'-'.join(map(str, MLP_SIZES))}, BatchNorm1d + Hardtanh, batch {MLP_BATCH}, Adam",
    "float-cnn": f"float vgg-small (width 0.5, fc 256-256; Hardtanh + float conv/linear), {CNN_SIZE}x{CNN_SIZE}x3, "
                 f"batch {CNN_BATCH}, Adam",
    "binary-cnn": f"binary vgg-small (models.vgg_small(3, 10, 32, width=0.5, fc_units=(256, 256))), "
                  f"{CNN_SIZE}x{CNN_SIZE}x3, batch {CNN_BATCH}, Adam + weight clip",
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS),
                        help=f"comma-separated subset of {', '.join(MODELS)} (default: all)")
    parser.add_argument("--steps", type=int, default=30, help="measured steps (default 30)")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured steps first (default 5)")
    parser.add_argument("--threads", type=int, default=1, help="threads for minibnn, its BLAS and PyTorch (1)")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of the minibnn steps")
    parser.add_argument("--clock", choices=sorted(CLOCK), default="wall",
                        help="wall: elapsed time (default); cpu: CPU time of this thread, which leaves out the time "
                             "other processes take (exact with 1 thread, as then everything runs in this thread)")
    parser.add_argument("--no-torch", action="store_true", help="minibnn alone, even when PyTorch is installed")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    bad = [n for n in names if n not in MODELS]
    if bad or not names:
        parser.error(f"--models: unknown {bad}; choose among {', '.join(MODELS)}")
    if args.threads != THREADS:
        parser.error("--threads must be given on the command line (it is read before NumPy starts)")

    global clock
    clock = CLOCK[args.clock]
    if args.clock == "cpu" and args.threads != 1:
        parser.error("--clock cpu needs --threads 1 (other threads' time would not count)")
    how = set_threads(args.threads)
    torch_version = None
    if not args.no_torch:
        try:
            import torch
            torch.set_num_threads(args.threads)
            torch.manual_seed(0)
            torch_version = torch.__version__
        except ImportError:
            pass
    print(f"threads: {args.threads} ({how}; torch.set_num_threads({args.threads})); NumPy {np.__version__}; "
          f"PyTorch {torch_version or 'not importable (pip install torch to compare)'}")
    print(f"median of {args.steps} steps after {args.warmup} warm-up steps; minibnn and PyTorch steps alternate; "
          f"clock: {'elapsed time' if args.clock == 'wall' else 'CPU time of this thread'}")
    try:
        print(f"load average before: {os.getloadavg()[0]:.2f} (1 min) on {os.cpu_count()} CPUs"
              + ("  -- the machine is busy: figures are noisy" if os.getloadavg()[0] > 0.5 else ""))
    except OSError:
        pass
    totals = []
    for name in names:
        r = bench(name, args.steps, args.warmup, args.profile, torch_version is not None)
        print(f"\n== {name}: {DESCRIPTION[name]}; {r['params']} parameters")
        if "first loss" in r:
            a, b = r["first loss"]
            print(f"first loss (same weights): minibnn {a:.6f}, PyTorch {b:.6f} (|diff| {abs(a - b):.1e}"
                  + ("; a binary net may differ by a sign flip of a value within float rounding of 0)"
                     if name == "binary-cnn" else ")"))
        header = f"{'phase':<16}{'minibnn ms':>12}"
        if r["torch"]:
            header += f"{'PyTorch ms':>12}{'ratio':>8}"
        print(header)
        for phase, ms in r["minibnn"].items():
            line = f"{phase:<16}{ms:>12.2f}"
            if r["torch"]:
                line += f"{r['torch'][phase]:>12.2f}{ms / r['torch'][phase]:>8.2f}"
            print(line)
        if r["torch"]:
            ratio = r["minibnn"]["total"] / r["torch"]["total"]
            totals.append((name, r["minibnn"]["total"], r["torch"]["total"], ratio))
            print(f"minibnn / PyTorch {torch_version} per step: {ratio:.2f}x")
        if r["profile"]:
            print(r["profile"])
    if totals:
        print("\nsummary (ms per step, minibnn / PyTorch):")
        for name, ours, theirs, ratio in totals:
            print(f"  {name:<12}{ours:>9.1f}{theirs:>9.1f}{ratio:>8.2f}x")
    try:
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
