"""``bn-ablation``: which part of BatchNorm does a binary network need?

The paper (Sari, Belbahri & Partovi Nia 2019, Sec. 4, Table 2; Theorem 1): in a BNN, sign(BN(s)) is a mere
threshold in the forward pass; BatchNorm's real job is in the backward pass, where dividing the binary dot
product (variance K_{l-1}) by its standard deviation stops the gradient from exploding layer after layer. So
the batch variance can be replaced by a constant. Binarized ResNet-56 on CIFAR-10 with BatchNorm replaced by:
nothing ("No BatchNorm"), the mean subtraction only ("Centred Only"), centring then division by sqrt(K_{l-1})
("Fixed"), or by sqrt(K_{l+1}) ("Glorot"). Best accuracy, max / min over runs: BatchNorm 88.8 / 86.9,
Glorot 80.3 / 77.7, Fixed 79.6 / 78.9, Centred Only 31.7 / 14.5, No BatchNorm 31.7 / 15.0; replacing σ² by
2K_{l-1} or 3K_{l-1} gave 86.4 and 87.9.

What we do, at classroom scale: the five variants (:func:`minibnn.normalization.make_norm`: "batchnorm",
"glorot", "fixed", "centred", "none"; in the full size also "fixed" with c = 2 and 3) in a binary ResNet with
Bi-Real shortcuts (:func:`minibnn.models.bireal_resnet`, the stand-in for ResNet-56, whose blocks also keep a
full-precision shortcut) and in a deep binary MLP (:func:`minibnn.models.bnn_mlp`, 5 hidden layers: depth is
what makes gradients explode), on the bundled 8x8 digits; Adam at 1e-3, the step schedule of Sari et al.,
first and last layers full precision. Besides accuracy, each run measures Theorem 1 directly: the standard
deviation of the weight gradient of the first and of the last binary layer on one batch at initialisation,
reported as log10(first / last) (0: no growth towards the input; large: exploding gradients). The metric is
the best test accuracy (%): max and min over seeds as in the paper, and mean ± std.

Run it:

    minibnn experiment bn-ablation --quick            # 10 configs x 3 seeds, 8 epochs
    minibnn experiment bn-ablation --full             # full: 5 seeds, 20 epochs, ResNet at width 1, c = 2, 3

Run time on 2 cores (2 worker processes; measured on the project's 2-core machine, which other jobs kept at a
load average of 2-3): tiny 1 s; quick 1.0 min; full 8.1 min in one run, 10.8 min in another (70 runs; published
with its verdict in the docs' full-size results, ``docs/results/bn-ablation``).
"""
from __future__ import annotations

import math
from typing import Any, Dict, List

import numpy as np

from ..losses import CrossEntropyLoss
from ..random import manual_seed
from ..tensor import Tensor
from .recipe import ARCH_TITLES, binary_layers, build_model, lr_of, train, width_of
from .report import md_table
from .studies import COMMON_OPTIONS, STUDIES, Study

#: Sari et al.'s Table 2 (binarized ResNet-56, CIFAR-10): best accuracy, max and min over runs
PAPER = {"batchnorm": (88.8, 86.9), "glorot": (80.3, 77.7), "fixed": (79.6, 78.9), "centred": (31.7, 14.5),
         "none": (31.7, 15.0), "fixed-c2": (86.4, None), "fixed-c3": (87.9, None)}
TITLES = {"batchnorm": "BatchNorm", "glorot": "Glorot", "fixed": "Fixed", "centred": "Centred Only",
          "none": "No BatchNorm", "fixed-c2": "Fixed (2K)", "fixed-c3": "Fixed (3K)"}

_TRAINING = dict(batch_size=64, lrs={"resnet": 1e-3, "mlp": 1e-3}, milestones=(80 / 150, 120 / 150, 140 / 150),
                 mlp_hidden_layers=5)


def _variant(kind: str, multiplier: float) -> str:
    return kind if kind != "fixed" or multiplier == 1 else f"fixed-c{multiplier:g}"


@STUDIES.register("bn-ablation")
class BNAblation(Study):
    name = "bn-ablation"
    position = 3
    choices = {"kinds": ("batchnorm", "glorot", "fixed", "centred", "none")}
    title = "BatchNorm ablation in binary networks: none / centred / fixed / Glorot scale (Sari et al. 2019, Table 2)"
    metric = "best_acc"
    sizes = {
        "tiny": {**COMMON_OPTIONS, **_TRAINING, "train_limit": 256, "test_limit": 128, "epochs": 1,
                 "archs": ("mlp",), "widths": {"mlp": 1 / 64},
                 "kinds": ("batchnorm", "glorot", "fixed", "centred", "none"), "fixed_multipliers": (1,)},
        "quick": {**COMMON_OPTIONS, **_TRAINING, "epochs": 8, "archs": ("resnet", "mlp"),
                  "widths": {"resnet": 0.5, "mlp": 1 / 16},
                  "kinds": ("batchnorm", "glorot", "fixed", "centred", "none"), "fixed_multipliers": (1,)},
        "full": {**COMMON_OPTIONS, **_TRAINING, "epochs": 20, "archs": ("resnet", "mlp"),
                 "widths": {"resnet": 1.0, "mlp": 1 / 16},
                 "kinds": ("batchnorm", "glorot", "fixed", "centred", "none"), "fixed_multipliers": (1, 2, 3)},
    }
    default_seeds = {"tiny": 2, "quick": 3, "full": 5}

    def configs(self, opts: Dict[str, Any]) -> List[Dict[str, Any]]:
        out = []
        for arch in opts["archs"]:
            for kind in opts["kinds"]:
                for c in (opts["fixed_multipliers"] if kind == "fixed" else (1,)):
                    variant = _variant(kind, float(c))
                    out.append({"label": f"{arch}/{variant}", "arch": arch, "norm": kind, "multiplier": float(c),
                                "variant": variant})
        return out

    def run_one(self, config: Dict[str, Any], seed: int, opts: Dict[str, Any]) -> Dict[str, Any]:

        data = self.data(opts)
        extra = {"num_hidden": int(opts["mlp_hidden_layers"])} if config["arch"] == "mlp" else {}
        manual_seed(seed)
        model = build_model(config["arch"], data, width_of(opts, config["arch"]), norm=config["norm"],
                            norm_multiplier=config["multiplier"], **extra)
        growth = _initial_gradient_growth(model, data, opts["batch_size"], seed)
        log = train(model, data, epochs=opts["epochs"], lr=lr_of(opts, config["arch"]),
                    batch_size=opts["batch_size"], seed=seed,
                    milestones=opts["milestones"])
        return {"best_acc": log["best_acc"], "final_acc": log["final_acc"], "grad_growth_log10": growth,
                "diverged": float(log["diverged_epoch"] is not None), "test_acc_curve": log["test_acc"]}

    def analyse(self, result) -> Dict[str, Any]:
        return {row["label"]: {"max": row["best_acc_max"], "min": row["best_acc_min"],
                               "grad_growth_log10": row["grad_growth_log10_mean"],
                               "diverged_runs": row["diverged_mean"] * row["n"]} for row in result.summary}

    def markdown(self, result) -> str:
        variants = []
        for c in result.configs:
            if c["variant"] not in variants:
                variants.append(c["variant"])
        lines = [f"# {self.title}", "",
                 f"Best test accuracy (%) over {result.options['epochs']} epochs on {result.options['dataset']}, "
                 f"max and min over {len(result.seeds)} seeds as in the paper, then mean ± std; log10 of the "
                 f"growth of the weight-gradient std from the last to the first binary layer at initialisation "
                 f"(Theorem 1: large without a scale).", ""]
        for arch in result.options["archs"]:
            def cell(v, key, digits=1):
                value = result.row(f"{arch}/{v}")[key]
                return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"

            rows = [["Max"] + [cell(v, "best_acc_max") for v in variants],
                    ["Min"] + [cell(v, "best_acc_min") for v in variants],
                    ["Mean ± std"] + [result.pm(f"{arch}/{v}", "best_acc", 1) for v in variants],
                    ["Gradient growth (log10)"] + [cell(v, "grad_growth_log10_mean", 2) for v in variants],
                    ["Diverged runs"] + [_diverged(result, f"{arch}/{v}") for v in variants]]
            header = [ARCH_TITLES[arch]] + [TITLES[v] for v in variants]
            lines += [f"**{ARCH_TITLES[arch]} (ours)**", "", md_table(header, rows), ""]
        paper_rows = [["Max"] + [f"{PAPER[v][0]:.1f}" if v in PAPER else "–" for v in variants],
                      ["Min"] + [f"{PAPER[v][1]:.1f}" if PAPER.get(v, (0, None))[1] is not None else "–"
                                 for v in variants]]
        lines += ["**Paper** (binarized ResNet-56, CIFAR-10)", "",
                  md_table(["ResNet-56"] + [TITLES[v] for v in variants], paper_rows)]
        return "\n".join(lines)

    def plot(self, result, fig) -> None:
        axes = fig.subplots(1, 2)
        variants = []
        for c in result.configs:
            if c["variant"] not in variants:
                variants.append(c["variant"])
        archs = list(result.options["archs"])
        x = np.arange(len(variants))
        width = 0.8 / max(1, len(archs))
        for k, arch in enumerate(archs):
            rows = [result.row(f"{arch}/{v}") for v in variants]
            axes[0].bar(x + k * width, [r["best_acc_mean"] for r in rows], width,
                        yerr=[r["best_acc_std"] for r in rows], capsize=3, label=ARCH_TITLES[arch])
            axes[1].bar(x + k * width, [r["grad_growth_log10_mean"] for r in rows], width, label=ARCH_TITLES[arch])
        paper = [PAPER[v][0] if v in PAPER else np.nan for v in variants]
        axes[0].scatter(x + width * (len(archs) - 1) / 2, paper, marker="_", s=400, color="gray", zorder=3,
                        label="paper, ResNet-56 (CIFAR-10)")
        for ax, label in ((axes[0], "best test accuracy (%)"), (axes[1], "log10 gradient growth at init")):
            ax.set_xticks(x + width * (len(archs) - 1) / 2)
            ax.set_xticklabels([TITLES[v] for v in variants], rotation=20, fontsize=8)
            ax.set_ylabel(label)
            ax.legend(fontsize=8)
        axes[0].set_title("Sari et al. 2019, Table 2")
        axes[1].set_title("Theorem 1: gradient growth towards the input")


def _diverged(result, label: str) -> str:
    """"k/n": how many of the n seeds of ``label`` stopped on a non-finite loss."""
    row = result.row(label)
    return f"{int(round(row['diverged_mean'] * row['n']))}/{row['n']}"


def _initial_gradient_growth(model, data, batch_size: int, seed: int) -> float:
    """log10(std of dL/dW of the first binary layer / std of dL/dW of the last one), one batch, at init.

    Theorem 1 of Sari et al.: without a scale the gradient variance grows by a factor K per layer towards the
    input; with BatchNorm (or a fixed scale) it stays bounded. Runs in training mode; the model's parameters
    and BatchNorm running statistics are restored afterwards, so training starts from the same state.
    """

    layers = [m for _, m in binary_layers(model)]
    if len(layers) < 2:
        return math.nan
    saved = {k: np.array(v, copy=True) for k, v in model.state_dict().items()}
    order = np.random.default_rng([int(seed), 1]).permutation(len(data.y_train))[:batch_size]
    model.train()
    loss = CrossEntropyLoss()(model(Tensor(np.asarray(data.x_train[order]))), np.asarray(data.y_train[order]))
    model.zero_grad()
    loss.backward()
    with np.errstate(all="ignore"):
        first, last = float(np.std(layers[0].weight.grad)), float(np.std(layers[-1].weight.grad))
    model.zero_grad()
    model.load_state_dict(saved)
    if not (first > 0 and last > 0 and math.isfinite(first) and math.isfinite(last)):
        return math.nan
    return math.log10(first / last)
