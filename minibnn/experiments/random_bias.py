"""``random-bias``: does a random bias init close the gap between htanh (or sign + STE) and ReLU networks?

The paper (Li & Partovi Nia, "Random Bias Initialization Improves Quantized Training", Sec. 5, Tables 1-2;
the same tables in the ICLR 2020 draft): an htanh unit passes gradient only for data in a slab around its
hyperplane, and with zero biases all the slabs sit around the origin, so points near the origin train every
unit and far points almost none. Drawing the bias that shifts each unit from U[-λ, λ] spreads the slabs
(with BatchNorm, λ ≈ 2 covers [-3, 3]). CIFAR-10, VGG-7 and a ResNet, SGD with momentum; Table 1 gives the
validation error of full-precision htanh nets for λ in 0 ... 2.5 against ReLU (VGG-7: 10.91% at λ = 0 down to
7.83% at λ = 2.5, ReLU 6.98%), Table 2 the error of binary nets (sign with the htanh STE) for λ in 0 ... 3
(binary VGG-7: 10.77% down to 8.48%).

What we do, at classroom scale: the same two sweeps on the bundled 8x8 digits (1438 train / 359 test images,
1 channel), with :func:`minibnn.models.vgg7` and :func:`minibnn.models.bireal_resnet` scaled down by a width
multiplier (first and last layers full precision, BatchNorm after every hidden layer). The "bias" is the
shift β of the BatchNorm in front of each activation, drawn from U[-λ, λ] by
:func:`~minibnn.experiments.recipe.randomize_norm_bias` from its own generator, so every λ starts from the
same weights (as in the paper). Full precision: the activation of each hidden layer is htanh, or ReLU (λ = 0)
for the baseline, and weights are not clipped; binary: sign activations and weights with the clipped STE and
BinaryNet's weight clip. Adam at Sari et al.'s rates (5e-3 for VGG-7, 1e-3 for the ResNet; the paper used
SGD with momentum 0.9 and weight decay 5e-4, ``--set optimizer=sgd --set lrs='{"vgg7": 0.05, "resnet": 0.05}'
--set weight_decay=5e-4`` to follow it), learning rate divided by 10 at half and three quarters of the epochs.
The metric is the test error (%) after the last epoch, mean ± std over seeds. Each run also measures the
paper's geometry at initialisation on 256 training images: the share of (point, unit) pairs inside the
activation's gradient window and the Gini coefficients of data and hyperplane equality
(:mod:`minibnn.theory.geometry`).

Run it:

    minibnn experiment random-bias --quick            # 28 configs x 2 seeds, 10 epochs
    minibnn experiment random-bias --full             # full: 5 seeds, 30 epochs, ResNet at width 1
    minibnn experiment random-bias --dataset mnist --data-root ~/data --set train_limit=10000

Run time on 2 cores (2 worker processes; measured on the project's 2-core machine, which other jobs kept at a
load average of 2-3): tiny 1 s; quick 4.3 min; full 17.3 min (140 runs; published with its verdict in
the docs' full-size results, ``docs/results/random-bias``).
"""
from __future__ import annotations

from typing import Any, Dict, List

import numpy as np

from .. import functional as F
from ..random import manual_seed
from ..tensor import Tensor, no_grad
from ..theory.geometry import activation_pattern, data_equality, hyperplane_equality
from .recipe import ARCH_TITLES, binary_layers, build_model, lr_of, randomize_norm_bias, train, width_of
from .report import md_table
from .studies import COMMON_OPTIONS, STUDIES, Study

#: validation error (%) in Li & Partovi Nia's Table 1 (full precision) and Table 2 (binary), CIFAR-10
PAPER_TABLE1 = {"vgg7": {"relu": 6.98, 0.0: 10.91, 0.5: 9.99, 1.0: 9.15, 1.5: 8.36, 2.0: 7.98, 2.5: 7.83},
                "resnet": {"relu": 9.45, 0.0: 10.63, 0.5: 9.87, 1.0: 10.47, 1.5: 10.13, 2.0: 10.23, 2.5: 9.84}}
PAPER_TABLE2 = {"vgg7": {0.0: 10.77, 0.5: 9.57, 1.0: 9.17, 1.5: 8.57, 2.0: 8.56, 2.5: 8.53, 3.0: 8.48},
                "resnet": {0.0: 23.11, 0.5: 22.31, 1.0: 22.83, 1.5: 22.56, 2.0: 22.47, 2.5: 22.19, 3.0: 22.30}}

_TRAINING = dict(optimizer="adam", lrs={"vgg7": 5e-3, "resnet": 1e-3, "mlp": 1e-3}, weight_decay=0.0, batch_size=64,
                 milestones=(0.5, 0.75))


@STUDIES.register("random-bias")
class RandomBias(Study):
    name = "random-bias"
    position = 1
    title = "Random bias init U[-λ, λ] for htanh / binary networks vs ReLU (Li & Partovi Nia, Tables 1-2)"
    metric = "error"
    sizes = {
        "tiny": {**COMMON_OPTIONS, **_TRAINING, "train_limit": 256, "test_limit": 128, "epochs": 1,
                 "archs": ("mlp",), "widths": {"mlp": 1 / 64}, "fp_lams": (0.0, 2.0), "binary_lams": (0.0, 2.0)},
        "quick": {**COMMON_OPTIONS, **_TRAINING, "epochs": 10, "archs": ("vgg7", "resnet"),
                  "widths": {"vgg7": 1 / 8, "resnet": 0.5},
                  "fp_lams": (0.0, 0.5, 1.0, 1.5, 2.0, 2.5), "binary_lams": (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0)},
        "full": {**COMMON_OPTIONS, **_TRAINING, "epochs": 30, "archs": ("vgg7", "resnet"),
                 "widths": {"vgg7": 1 / 8, "resnet": 1.0},
                 "fp_lams": (0.0, 0.5, 1.0, 1.5, 2.0, 2.5), "binary_lams": (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0)},
    }
    default_seeds = {"tiny": 2, "quick": 2, "full": 5}

    def configs(self, opts: Dict[str, Any]) -> List[Dict[str, Any]]:
        out = []
        for arch in opts["archs"]:
            out.append({"label": f"fp/{arch}/relu", "part": "full-precision", "arch": arch, "activation": "relu",
                        "lam": 0.0})
            for lam in opts["fp_lams"]:
                out.append({"label": f"fp/{arch}/htanh/{float(lam):g}", "part": "full-precision", "arch": arch,
                            "activation": "htanh", "lam": float(lam)})
            for lam in opts["binary_lams"]:
                out.append({"label": f"binary/{arch}/{float(lam):g}", "part": "binary", "arch": arch,
                            "activation": "sign", "lam": float(lam)})
        return out

    def run_one(self, config: Dict[str, Any], seed: int, opts: Dict[str, Any]) -> Dict[str, Any]:

        data = self.data(opts)
        if config["activation"] == "sign":
            model_options: Dict[str, Any] = {}  # BinaryNet: sign activations and weights, weight clip
        else:
            relu = config["activation"] == "relu"
            model_options = dict(input_quantizer=F.relu if relu else "hard_tanh", kernel_quantizer=None,
                                 kernel_constraint=None, head_activation="relu" if relu else "hardtanh",
                                 pad_values=0.0)
        manual_seed(seed)
        model = build_model(config["arch"], data, width_of(opts, config["arch"]), **model_options)
        randomize_norm_bias(model, config["lam"], seed)
        geometry = _initial_geometry(model, data, "relu" if config["activation"] == "relu" else "htanh", seed)
        log = train(model, data, epochs=opts["epochs"], lr=lr_of(opts, config["arch"]),
                    batch_size=opts["batch_size"], seed=seed,
                    optimizer=opts["optimizer"], weight_decay=opts["weight_decay"], milestones=opts["milestones"])
        return {"error": 100.0 - log["final_acc"], "best_error": 100.0 - log["best_acc"],
                "final_acc": log["final_acc"], "diverged": float(log["diverged_epoch"] is not None), **geometry,
                "test_acc_curve": log["test_acc"], "train_acc_curve": log["train_acc"]}

    def analyse(self, result) -> Dict[str, Any]:
        """Per arch and part: the error at λ = 0, the best λ and its error, and (full precision) ReLU's error."""
        out: Dict[str, Any] = {}
        for arch in result.options["archs"]:
            for part, prefix in (("full-precision", f"fp/{arch}/htanh/"), ("binary", f"binary/{arch}/")):
                rows = [r for r in result.summary if r["label"].startswith(prefix)]
                if not rows:
                    continue
                best = min(rows, key=lambda r: r["error_mean"])
                zero = [r for r in rows if r["lam"] == 0.0]
                entry = {"best_lam": best["lam"], "best_error": best["error_mean"],
                         "error_at_lam0": zero[0]["error_mean"] if zero else None}
                if part == "full-precision":
                    entry["relu_error"] = result.row(f"fp/{arch}/relu")["error_mean"]
                out[f"{part}/{arch}"] = entry
        return out

    def markdown(self, result) -> str:
        archs = list(result.options["archs"])
        titles = [ARCH_TITLES[a] for a in archs]

        def paper(table, arch, key):
            value = table.get(arch, {}).get(key)
            return "–" if value is None else f"{value:.2f}"

        header1 = ["Activations"] + [h for t in titles for h in (f"{t} (ours)", f"{t} (paper)")]
        rows1 = [["ReLU (Baseline)"] + [c for a in archs for c in (result.pm(f"fp/{a}/relu", "error"),
                                                                   paper(PAPER_TABLE1, a, "relu"))]]
        for lam in result.options["fp_lams"]:
            name = "htanh" if lam == 0 else f"htanh (λ={lam:g})"
            rows1.append([name] + [c for a in archs for c in (result.pm(f"fp/{a}/htanh/{lam:g}", "error"),
                                                              paper(PAPER_TABLE1, a, float(lam)))])
        header2 = ["λ"] + [h for t in titles for h in (f"Binary {t} (ours)", f"Binary {t} (paper)")]
        rows2 = [[f"{lam:.1f}"] + [c for a in archs for c in (result.pm(f"binary/{a}/{lam:g}", "error"),
                                                               paper(PAPER_TABLE2, a, float(lam)))]
                 for lam in result.options["binary_lams"]]
        lines = [f"# {self.title}", "",
                 f"Test error (%) after {result.options['epochs']} epochs on {result.options['dataset']}; "
                 f"\"paper\" = CIFAR-10 validation error of the full-size nets.", "",
                 "**Table 1: full-precision training** (λ = 0 is the usual zero bias)", "", md_table(header1, rows1),
                 "", "**Table 2: binary training**", "", md_table(header2, rows2), ""]
        header3 = ["λ"] + [f"{t} {part}" for t in titles for part in ("active share", "data Gini", "hyperplane Gini")]
        rows3 = []
        for lam in result.options["binary_lams"]:
            cells = [f"{lam:.1f}"]
            for a in archs:
                row = result.row(f"binary/{a}/{lam:g}")
                cells += [f"{row['init_active_share_mean']:.3f}", f"{row['init_data_gini_mean']:.3f}",
                          f"{row['init_hyperplane_gini_mean']:.3f}"]
            rows3.append(cells)
        lines += ["**Geometry at initialisation (binary nets)**: share of (point, unit) pairs inside the STE window "
                  "|z| <= 1, and Gini coefficients of the per-point counts (data equality) and per-unit counts "
                  "(hyperplane equality), averaged over the hidden activations (0 = perfectly equal). The paper "
                  "argues random biases trade hyperplane equality for data equality.", "", md_table(header3, rows3),
                  "", "**Summary**", ""]
        for key, entry in result.analysis.items():
            part, arch = key.split("/")
            text = (f"- {part} {ARCH_TITLES[arch]}: error {entry['error_at_lam0']:.2f}% at λ=0, best "
                    f"{entry['best_error']:.2f}% at λ={entry['best_lam']:g}")
            if "relu_error" in entry:
                text += f"; ReLU {entry['relu_error']:.2f}%"
            lines.append(text)
        return "\n".join(lines)

    def plot(self, result, fig) -> None:
        """Each curve as the change of the error from λ = 0 (points): the paper's errors (CIFAR-10) are 3-5x
        ours, and what the two are compared on is how the error moves with λ."""
        axes = fig.subplots(1, 2)
        for ax, part, lams_key in ((axes[0], "fp", "fp_lams"), (axes[1], "binary", "binary_lams")):
            for i, arch in enumerate(result.options["archs"]):
                lams = [float(v) for v in result.options[lams_key]]
                prefix = f"fp/{arch}/htanh/" if part == "fp" else f"binary/{arch}/"
                rows = [result.row(f"{prefix}{lam:g}") for lam in lams]
                base, color = result.row(f"{prefix}0")["error_mean"], f"C{i}"
                ax.errorbar(lams, [r["error_mean"] - base for r in rows], yerr=[r["error_std"] for r in rows],
                            marker="o", capsize=3, color=color,
                            label=f"{ARCH_TITLES[arch]} {'htanh' if part == 'fp' else 'binary'} (ours)")
                paper = (PAPER_TABLE1 if part == "fp" else PAPER_TABLE2).get(arch, {})
                if part == "fp":
                    relu = result.row(f"fp/{arch}/relu")["error_mean"] - base
                    ax.axhline(relu, ls="--", color=color, label=f"{ARCH_TITLES[arch]} ReLU (ours)")
                    if "relu" in paper:
                        ax.axhline(paper["relu"] - paper[0.0], ls="-.", color=color, alpha=0.5,
                                   label=f"{ARCH_TITLES[arch]} ReLU (paper)")
                paper_lams = [lam for lam in lams if lam in paper]
                if paper_lams and 0.0 in paper:
                    ax.plot(paper_lams, [paper[lam] - paper[0.0] for lam in paper_lams], ls=":", marker="x",
                            color=color, alpha=0.6, label=f"{ARCH_TITLES[arch]} (paper, CIFAR-10)")
            ax.axhline(0.0, color="gray", lw=0.6)
            ax.set_xlabel("λ (bias init U[-λ, λ])")
            ax.set_ylabel("test error minus the error at λ = 0 (points)")
            ax.set_title("full precision (Table 1)" if part == "fp" else "binary (Table 2)")
            ax.legend(fontsize=7)

def _initial_geometry(model, data, activation: str, seed: int, n_points: int = 256) -> Dict[str, float]:
    """The paper's three properties at initialisation, measured on ``n_points`` training samples.

    For every hidden layer with an activation in front (its ``input_quantizer``: ReLU, htanh or sign with the
    clipped STE), the pre-activations z of the batch give the pattern of (point, unit) pairs that pass gradient
    (z > 0 for ReLU, |z| <= 1 for htanh and the STE; :func:`minibnn.theory.geometry.activation_pattern`; for a
    convolution a unit is one (channel, position)). Returned, averaged over those layers: the share of active
    pairs, and the Gini coefficients of the per-point counts (data equality; 0 = every point reaches as many
    units) and of the per-unit counts (hyperplane equality; 0 = every unit sees as many points). Random biases
    should lower the first Gini and raise the second (Li & Partovi Nia, Secs. 3-4). BatchNorm statistics and
    parameters are restored afterwards, so training starts from the same state.
    """

    inputs: List[np.ndarray] = []
    removers = [layer.register_forward_hook(lambda m, args, out: inputs.append(np.asarray(args[0].data)))
                for _, layer in binary_layers(model)]
    saved = {k: np.array(v, copy=True) for k, v in model.state_dict().items()}
    order = np.random.default_rng([int(seed), 3]).permutation(len(data.y_train))[:n_points]
    try:
        model.train()
        with no_grad():
            model(Tensor(np.asarray(data.x_train[order])))
    finally:
        for remove in removers:
            remove()
        model.load_state_dict(saved)
    shares, data_gini, plane_gini = [], [], []
    for z in inputs:
        pattern = activation_pattern(z.reshape(len(z), -1), activation)
        shares.append(pattern.mean())
        data_gini.append(data_equality(pattern).gini)
        plane_gini.append(hyperplane_equality(pattern).gini)
    return {"init_active_share": float(np.nanmean(shares)), "init_data_gini": float(np.nanmean(data_gini)),
            "init_hyperplane_gini": float(np.nanmean(plane_gini))}
