"""``init-variance``: does a binary network care about the variance of its initial weights?

The paper (Sari, Belbahri & Partovi Nia 2019, "A Study on Binary Neural Networks Initialization", Sec. 4,
Table 1): sign(w) forgets the scale of w, and BatchNorm removes the scale of the dot product, so Glorot's
fan-dependent variance is pointless for a BNN; any zero-mean symmetric law with the *same variance in every
layer* does as well or better. CIFAR-10, VGG-like net, binarized ResNet-56 and MobileNetV1 (first conv and
last classifier full precision), Adam (lr 5e-3 for VGG, 1e-3 otherwise), 150 epochs with the learning rate
divided by 10 at epochs 80, 120 and 140; best top-1 accuracy for Glorot and for U with σ² in {1e-1, 1e-2,
1e-3, 1e-4}: VGG 90.4-90.7 (Glorot 90.5), ResNet-56 86.9-88.8 (88.5), MobileNetV1 68.9-73.2 (71.7).

What we do, at classroom scale: the same sweep on the bundled 8x8 digits with :func:`minibnn.models.vgg7`
("VGG"), :func:`minibnn.models.bireal_resnet` (a ResNet with full-precision shortcuts around each binary
convolution, the stand-in for their ResNet-56) and :func:`minibnn.models.bnn_mlp` (instead of MobileNetV1,
which minibnn does not build), all scaled down by a width multiplier, BatchNorm after every hidden layer,
first and last layers full precision, BinaryNet's weight clip. Every layer's weights are drawn from
:class:`minibnn.init.ConstantVariance` (uniform, variance σ²) or Glorot uniform; the same recipe as the paper
(Adam, their learning rates, the step schedule at 80/150, 120/150 and 140/150 of the epochs). The metric is
the best test accuracy over the epochs (%), as in the paper's table, mean ± std over seeds; the final
accuracy is in the CSV too.

Run it:

    minibnn experiment init-variance --quick          # 15 configs x 2 seeds, 8 epochs
    minibnn experiment init-variance --full           # full: 5 seeds, 25 epochs, wider ResNet and MLP

Run time on 2 cores (2 worker processes; measured on the project's 2-core machine, which other jobs kept at a
load average of 2-3): tiny 1 s; quick 1.5 min; full 9.0 min (75 runs; published with its verdict
in the docs' full-size results, ``docs/results/init-variance``).
"""
from __future__ import annotations

import math
from typing import Any, Dict, List

from ..init import ConstantVariance
from ..random import manual_seed
from .recipe import ARCH_TITLES, build_model, lr_of, train, width_of
from .report import md_table
from .studies import COMMON_OPTIONS, STUDIES, Study

#: best top-1 accuracy (%) in Sari et al.'s Table 1 (CIFAR-10): Glorot, then σ² = 1e-1 ... 1e-4
PAPER = {"VGG": [90.5, 90.4, 90.7, 90.6, 90.6], "ResNet-56": [88.5, 86.9, 88.5, 88.8, 88.1],
         "MobileNetv1": [71.7, 68.9, 71.2, 73.1, 73.2]}
#: our architecture standing in for each of theirs
COUNTERPART = {"vgg7": "VGG", "resnet": "ResNet-56", "mlp": "MobileNetv1"}

_TRAINING = dict(batch_size=64, lrs={"vgg7": 5e-3, "resnet": 1e-3, "mlp": 1e-3},
                 milestones=(80 / 150, 120 / 150, 140 / 150))


def _init_name(init) -> str:
    return "glorot" if init == "glorot" else f"{float(init):g}"


@STUDIES.register("init-variance")
class InitVariance(Study):
    name = "init-variance"
    position = 2
    title = "Constant-variance weight init σ² vs Glorot in binary networks (Sari et al. 2019, Table 1)"
    metric = "best_acc"
    sizes = {
        "tiny": {**COMMON_OPTIONS, **_TRAINING, "train_limit": 256, "test_limit": 128, "epochs": 1,
                 "archs": ("mlp",), "widths": {"mlp": 1 / 64}, "inits": ("glorot", 1e-2)},
        "quick": {**COMMON_OPTIONS, **_TRAINING, "epochs": 8, "archs": ("vgg7", "resnet", "mlp"),
                  "widths": {"vgg7": 1 / 8, "resnet": 0.5, "mlp": 1 / 16},
                  "inits": ("glorot", 1e-1, 1e-2, 1e-3, 1e-4)},
        "full": {**COMMON_OPTIONS, **_TRAINING, "epochs": 25, "archs": ("vgg7", "resnet", "mlp"),
                 "widths": {"vgg7": 1 / 8, "resnet": 1.0, "mlp": 1 / 8},
                 "inits": ("glorot", 1e-1, 1e-2, 1e-3, 1e-4)},
    }
    default_seeds = {"tiny": 2, "quick": 2, "full": 5}

    def configs(self, opts: Dict[str, Any]) -> List[Dict[str, Any]]:
        return [{"label": f"{arch}/{_init_name(init)}", "arch": arch, "init": _init_name(init)}
                for arch in opts["archs"] for init in opts["inits"]]

    def run_one(self, config: Dict[str, Any], seed: int, opts: Dict[str, Any]) -> Dict[str, Any]:

        data = self.data(opts)
        init = "glorot_uniform" if config["init"] == "glorot" else ConstantVariance(float(config["init"]))
        manual_seed(seed)
        model = build_model(config["arch"], data, width_of(opts, config["arch"]), weight_init=init)
        log = train(model, data, epochs=opts["epochs"], lr=lr_of(opts, config["arch"]),
                    batch_size=opts["batch_size"], seed=seed,
                    milestones=opts["milestones"])
        return {"best_acc": log["best_acc"], "final_acc": log["final_acc"],
                "diverged": float(log["diverged_epoch"] is not None), "test_acc_curve": log["test_acc"]}

    def analyse(self, result) -> Dict[str, Any]:
        """Per arch: the best σ² and its gain over Glorot (percentage points of best accuracy)."""
        out = {}
        for arch in result.options["archs"]:
            rows = [r for r in result.summary if r["arch"] == arch]
            glorot = [r for r in rows if r["init"] == "glorot"]
            constant = [r for r in rows if r["init"] != "glorot"]
            if not constant:
                continue
            best = max(constant, key=lambda r: r["best_acc_mean"])
            spread = max(r["best_acc_mean"] for r in constant) - min(r["best_acc_mean"] for r in constant)
            out[arch] = {"best_variance": best["init"], "best_acc": best["best_acc_mean"],
                         "glorot_acc": glorot[0]["best_acc_mean"] if glorot else None,
                         "gain_over_glorot": best["best_acc_mean"] - glorot[0]["best_acc_mean"] if glorot else None,
                         "spread_over_variances": spread}
        return out

    def markdown(self, result) -> str:
        inits = [_init_name(i) for i in result.options["inits"]]
        heads = ["Glorot" if i == "glorot" else f"σ² = {i}" for i in inits]
        rows = [[ARCH_TITLES[a]] + [result.pm(f"{a}/{i}", "best_acc") for i in inits]
                for a in result.options["archs"]]
        paper_columns = ["glorot", "0.1", "0.01", "0.001", "0.0001"]
        paper_rows = []
        for arch in result.options["archs"]:
            theirs = COUNTERPART.get(arch)
            if theirs:
                values = dict(zip(paper_columns, PAPER[theirs]))
                paper_rows.append([f"{theirs} (vs our {ARCH_TITLES[arch]})"] +
                                  [f"{values[i]:.1f}" if i in values else "–" for i in inits])
        lines = [f"# {self.title}", "",
                 f"Best test accuracy (%) over {result.options['epochs']} epochs on {result.options['dataset']}, "
                 f"uniform init with the same variance σ² in every layer, or Glorot uniform.", "",
                 "**Ours**", "", md_table(["Model"] + heads, rows), "",
                 "**Paper** (CIFAR-10, 150 epochs; MobileNetV1 has no counterpart here, our MLP takes its row)", "",
                 md_table(["Model"] + heads, paper_rows), "", "**Summary**", ""]
        for arch, entry in result.analysis.items():
            gain = entry["gain_over_glorot"]
            lines.append(f"- {ARCH_TITLES[arch]}: best σ² = {entry['best_variance']} ({entry['best_acc']:.2f}%), "
                         f"{'' if gain is None else f'{gain:+.2f} points over Glorot; '}spread over σ²: "
                         f"{entry['spread_over_variances']:.2f} points")
        return "\n".join(lines)

    def plot(self, result, fig) -> None:
        ax = fig.subplots(1, 1)
        inits = [_init_name(i) for i in result.options["inits"]]
        variances = [i for i in inits if i != "glorot"]
        for k, arch in enumerate(result.options["archs"]):
            rows = [result.row(f"{arch}/{v}") for v in variances]
            ax.errorbar([float(v) for v in variances], [r["best_acc_mean"] for r in rows],
                        yerr=[r["best_acc_std"] for r in rows], marker="o", capsize=3, color=f"C{k}",
                        label=f"{ARCH_TITLES[arch]} constant σ²")
            if "glorot" in inits:
                ax.axhline(result.row(f"{arch}/glorot")["best_acc_mean"], ls="--", color=f"C{k}",
                           label=f"{ARCH_TITLES[arch]} Glorot")
            theirs = COUNTERPART.get(arch)
            if theirs:
                paper = dict(zip(("glorot", "0.1", "0.01", "0.001", "0.0001"), PAPER[theirs]))
                shown = [v for v in variances if str(v) in paper]
                ax.plot([float(v) for v in shown], [paper[str(v)] for v in shown], ls=":", marker="x",
                        color="gray", label=f"paper, {theirs} (CIFAR-10)")
                if "glorot" in inits:
                    ax.axhline(paper["glorot"], ls="-.", color="gray", lw=0.8, label=f"paper, {theirs} Glorot")
        if variances and not any(math.isclose(float(v), 0.0) for v in variances):
            ax.set_xscale("log")
        ax.set_xlabel("σ² (uniform, the same in every layer)")
        ax.set_ylabel("best test accuracy (%)")
        ax.set_title("Sari et al. 2019, Table 1")
        ax.legend(fontsize=8)
