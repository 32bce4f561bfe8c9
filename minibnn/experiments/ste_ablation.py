"""``ste-ablation``: which pseudo-gradient for sign, with which weight scale and regularizer?

The paper (Darabi, Belbahri, Courbariaux & Partovi Nia 2018, "BNN+", Sec. 4.1, Table 1): the backward pass of
sign (for activations *and* weights) uses the derivative of htanh (the clipped STE), tanh, Bi-Real's
piecewise quadratic ("bireal"), or SignSwish SS_β with β = 5, 10 or trainable (SS_t); the weights get a
trainable per-filter scale α with the regularizer R1 = |α - |w|| (α from the median of |W|) or R2 = (α - |w|)²
(α from the mean), or XNOR-Net's scale, or nothing. AlexNet and DoReFa-Net on CIFAR-10, Adam, batch norm
before every activation, first layer full precision, no weight clipping, λ = 5e-7. Top-1 accuracy: the
spread is small (AlexNet 80.3 to 87.4%, DoReFa 81.7 to 83.9%); R1/R2 beat "None" by about 1 point on AlexNet;
SS_t is the best STE with R1 on both nets; tanh with XNOR scales is the worst AlexNet cell (80.30).

What we do, at classroom scale: the 6 STEs x 4 scales (R1, R2, XNOR, None) on the bundled 8x8 digits with a
binary MLP (:func:`minibnn.models.bnn_mlp`, standing in for AlexNet) and vgg-small
(:func:`minibnn.models.vgg_small`, standing in for DoReFa-Net), scaled down by a width multiplier. Every
hidden layer binarizes its input and weights with the same quantizer (``"htanh"``, ``"tanh"``, ``"bireal"``,
``"ss_5"``, ``"ss_10"``, ``"ss_t"`` from :mod:`minibnn.quantizers`); R1 / R2 use ``weight_scale="trainable"``
with α initialised to the median / mean of |W| per filter (eqs. 8-9) and
:class:`minibnn.regularizers.BNNPlusRegularizer` with λ = 5e-7 (the paper's; ``--set reg_coefficient=...`` to
change it; at this λ the penalty is tiny, as in the paper); XNOR uses ``weight_scale="xnor"``; no weight
clipping (Algorithm 1), Glorot init, Adam at 1e-3 (MLP) or 5e-3 (vgg-small), learning rate divided by 10
at 30/55 and 45/55 of the epochs (the paper's AlexNet schedule). The metric is the final test accuracy (%),
mean ± std over seeds.

Run it:

    minibnn experiment ste-ablation --quick           # 48 configs x 2 seeds, 8 epochs (vgg-small underfits)
    minibnn experiment ste-ablation --full            # full: 5 seeds, 25 epochs, vgg-small at width 1/4

Run time on 2 cores (2 worker processes; measured on the project's 2-core machine, which other jobs kept at a
load average of 2-3): tiny 1 s; quick 1.2 min; full 11.3 min (240 runs; published with its verdict in the
docs' full-size results, ``docs/results/ste-ablation``).
"""
from __future__ import annotations

import math
from typing import Any, Dict, List

import numpy as np

from ..random import manual_seed
from ..regularizers import BNNPlusRegularizer
from .recipe import ARCH_TITLES, build_model, lr_of, train, width_of
from .report import md_table
from .studies import COMMON_OPTIONS, STUDIES, Study

#: Darabi et al.'s Table 1 (CIFAR-10 top-1 %): {scale: {ste: (AlexNet, DoReFa-Net)}}
PAPER = {
    "r1": {"ss_t": (87.16, 83.92), "ss_10": (86.80, 83.21), "ss_5": (86.85, 83.72), "tanh": (87.06, 82.79),
           "bireal": (87.04, 82.64), "htanh": (86.90, 82.78)},
    "r2": {"ss_t": (87.30, 83.52), "ss_10": (86.39, 82.43), "ss_5": (86.80, 83.58), "tanh": (87.13, 82.33),
           "bireal": (87.39, 82.93), "htanh": (87.20, 82.33)},
    "xnor": {"ss_t": (84.94, 82.58), "ss_10": (83.64, 83.12), "ss_5": (85.74, 82.54), "tanh": (80.30, 81.68),
             "bireal": (83.84, 82.58), "htanh": (83.87, 82.08)},
    "none": {"ss_t": (86.24, 83.00), "ss_10": (84.70, 82.98), "ss_5": (84.85, 83.14), "tanh": (86.12, 82.33),
             "bireal": (86.24, 82.56), "htanh": (85.97, 82.51)},
}
#: our architecture standing in for each of theirs (the column of PAPER it is compared with)
COUNTERPART = {"mlp": ("AlexNet", 0), "vgg-small": ("DoReFa-Net", 1)}
SCALE_TITLES = {"r1": "R1", "r2": "R2", "xnor": "XNOR", "none": "None"}
STE_TITLES = {"ss_t": "SS_t", "ss_10": "SS_10", "ss_5": "SS_5", "tanh": "tanh", "bireal": "bireal", "htanh": "htanh"}

_TRAINING = dict(batch_size=64, lrs={"mlp": 1e-3, "vgg-small": 5e-3}, milestones=(30 / 55, 45 / 55),
                 reg_coefficient=5e-7)


@STUDIES.register("ste-ablation")
class SteAblation(Study):
    name = "ste-ablation"
    position = 5
    choices = {"stes": tuple(STE_TITLES), "scales": tuple(SCALE_TITLES)}
    title = "STE x weight scale / regularizer ablation (Darabi et al. 2018, BNN+ Table 1)"
    metric = "final_acc"
    sizes = {
        "tiny": {**COMMON_OPTIONS, **_TRAINING, "train_limit": 256, "test_limit": 128, "epochs": 1,
                 "archs": ("mlp",), "widths": {"mlp": 1 / 64}, "scales": ("r1", "none"), "stes": ("ss_t", "htanh")},
        "quick": {**COMMON_OPTIONS, **_TRAINING, "epochs": 8, "archs": ("mlp", "vgg-small"),
                  "widths": {"mlp": 1 / 16, "vgg-small": 1 / 8}, "scales": ("r1", "r2", "xnor", "none"),
                  "stes": ("ss_t", "ss_10", "ss_5", "tanh", "bireal", "htanh")},
        "full": {**COMMON_OPTIONS, **_TRAINING, "epochs": 25, "archs": ("mlp", "vgg-small"),
                 "widths": {"mlp": 1 / 8, "vgg-small": 1 / 4}, "scales": ("r1", "r2", "xnor", "none"),
                 "stes": ("ss_t", "ss_10", "ss_5", "tanh", "bireal", "htanh")},
    }
    default_seeds = {"tiny": 2, "quick": 2, "full": 5}

    def configs(self, opts: Dict[str, Any]) -> List[Dict[str, Any]]:
        return [{"label": f"{arch}/{scale}/{ste}", "arch": arch, "scale": scale, "ste": ste}
                for arch in opts["archs"] for scale in opts["scales"] for ste in opts["stes"]]

    def run_one(self, config: Dict[str, Any], seed: int, opts: Dict[str, Any]) -> Dict[str, Any]:

        data = self.data(opts)
        scale = config["scale"]
        weight_scale = {"r1": "trainable", "r2": "trainable", "xnor": "xnor", "none": None}[scale]
        manual_seed(seed)
        model = build_model(config["arch"], data, width_of(opts, config["arch"]), input_quantizer=config["ste"],
                            kernel_quantizer=config["ste"], kernel_constraint=None, weight_scale=weight_scale,
                            # α starts at the minimiser of its regularizer: median|W| for R1, mean|W| for R2 (eqs. 8-9)
                            alpha_init="mean" if scale == "r2" else "median")
        regularizer = None
        if scale in ("r1", "r2"):
            regularizer = BNNPlusRegularizer(scale, coefficient=float(opts["reg_coefficient"]))
        log = train(model, data, epochs=opts["epochs"], lr=lr_of(opts, config["arch"]),
                    batch_size=opts["batch_size"], seed=seed,
                    milestones=opts["milestones"], extra_loss=regularizer)
        out = {"final_acc": log["final_acc"], "best_acc": log["best_acc"],
               "diverged": float(log["diverged_epoch"] is not None), "test_acc_curve": log["test_acc"]}
        if config["ste"] == "ss_t":  # the trained β of SignSwish, averaged over the quantizers
            betas = [float(np.mean(p.data)) for n, p in model.named_parameters() if n.endswith("beta")]
            out["trained_beta"] = float(np.mean(betas)) if betas else math.nan
        return out

    def analyse(self, result) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        for arch in result.options["archs"]:
            rows = [r for r in result.summary if r["arch"] == arch]
            best = max(rows, key=lambda r: r["final_acc_mean"])
            worst = min(rows, key=lambda r: r["final_acc_mean"])
            by_scale = {s: float(np.mean([r["final_acc_mean"] for r in rows if r["scale"] == s]))
                        for s in result.options["scales"]}
            by_ste = {s: float(np.mean([r["final_acc_mean"] for r in rows if r["ste"] == s]))
                      for s in result.options["stes"]}
            out[arch] = {"best": best["label"], "best_acc": best["final_acc_mean"], "worst": worst["label"],
                         "worst_acc": worst["final_acc_mean"], "mean_by_scale": by_scale, "mean_by_ste": by_ste}
        return out

    def markdown(self, result) -> str:
        o = result.options
        archs = list(o["archs"])
        header = ["Scale", "STE"]
        for a in archs:
            header += [f"{ARCH_TITLES[a]} (ours)"]
            if a in COUNTERPART:
                header += [f"{COUNTERPART[a][0]} (paper)"]
        rows = []
        for scale in o["scales"]:
            for k, ste in enumerate(o["stes"]):
                row = [SCALE_TITLES[scale] if k == 0 else "", STE_TITLES[ste]]
                for a in archs:
                    row.append(result.pm(f"{a}/{scale}/{ste}", "final_acc"))
                    if a in COUNTERPART:
                        row.append(f"{PAPER[scale][ste][COUNTERPART[a][1]]:.2f}")
                rows.append(row)
        lines = [f"# {self.title}", "",
                 f"Final test accuracy (%) after {o['epochs']} epochs on {o['dataset']}; the paper's columns are "
                 f"CIFAR-10 top-1 of AlexNet and DoReFa-Net, set beside the architecture standing in for each.",
                 "", md_table(header, rows), "", "**Summary** (means over the other factor)", ""]
        for arch, entry in result.analysis.items():
            scales = ", ".join(f"{SCALE_TITLES[s]} {v:.2f}" for s, v in entry["mean_by_scale"].items())
            stes = ", ".join(f"{STE_TITLES[s]} {v:.2f}" for s, v in entry["mean_by_ste"].items())
            lines.append(f"- {ARCH_TITLES[arch]}: best {entry['best']} ({entry['best_acc']:.2f}%), worst "
                         f"{entry['worst']} ({entry['worst_acc']:.2f}%); by scale: {scales}; by STE: {stes}")
        betas = [r for r in result.summary if r["ste"] == "ss_t" and "trained_beta_mean" in r]
        if betas:
            lines.append("- SS_t: trained β (mean over layers, started at 5): " +
                         ", ".join(f"{r['label']} {r['trained_beta_mean']:.2f}" for r in betas))
        return "\n".join(lines)

    def plot(self, result, fig) -> None:
        o = result.options
        archs = list(o["archs"])
        axes = fig.subplots(1, len(archs), squeeze=False)[0]
        for ax, arch in zip(axes, archs):
            grid = np.array([[result.row(f"{arch}/{scale}/{ste}")["final_acc_mean"] for ste in o["stes"]]
                             for scale in o["scales"]])
            image = ax.imshow(grid, cmap="viridis", aspect="auto")
            ax.set_xticks(range(len(o["stes"])))
            ax.set_xticklabels([STE_TITLES[s] for s in o["stes"]], fontsize=8)
            ax.set_yticks(range(len(o["scales"])))
            ax.set_yticklabels([SCALE_TITLES[s] for s in o["scales"]])
            low, high = np.nanmin(grid), np.nanmax(grid)
            theirs = COUNTERPART.get(arch)
            for i, scale in enumerate(o["scales"]):
                for j, ste in enumerate(o["stes"]):
                    bright = high > low and (grid[i, j] - low) / (high - low) > 0.6
                    text = f"{grid[i, j]:.1f}"
                    if theirs:
                        text += f"\n({PAPER[scale][ste][theirs[1]]:.1f})"
                    ax.text(j, i, text, ha="center", va="center", fontsize=7, color="black" if bright else "white")
            ax.set_xlabel("pseudo-gradient of sign in the backward pass (STE)")
            ax.set_ylabel("weight scale α / regularizer")
            paper_note = f"; in brackets: paper, {theirs[0]}" if theirs else ""
            ax.set_title(f"{ARCH_TITLES[arch]}: final test accuracy (%){paper_note}", fontsize=9)
            fig.colorbar(image, ax=ax, label="final test accuracy (%), ours")
