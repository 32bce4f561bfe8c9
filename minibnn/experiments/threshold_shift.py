"""``threshold-shift``: does moving the threshold of sign, so that -1 outnumbers +1, help a binary network?

The paper (Kim, Park, Lee & Kim 2021, "Improving Accuracy of Binary Neural Networks using Unbalanced Activation
Distribution"): ReLU's output is skewed, sign's is balanced; shifting the sign threshold to t > 0 makes most
activations -1 and raises accuracy. Binary vgg-small on CIFAR-10 (conv -> max-pool -> BN -> sign), 10 seeds:
accuracy rises only for positive shifts with max pooling, best at t = 1.2 (Fig. 4a), but symmetrically in ±t
with average pooling (Fig. 4d), since max pooling skews what BN centres; with t = 0 the layers after a max
pool already output more -1 than +1 (Fig. 4b), with t = 1.2 all layers do (Fig. 4c). The shift can be chosen
from the *first epoch's* training accuracy, whose trend over t follows the final validation accuracy's
(Fig. 6, XNOR-Net on ImageNet). A trainable threshold is BatchNorm's bias in disguise: after training, the
thresholds equal minus the BN biases (Fig. 7), and the effective thresholds th - β hardly move from their
initial values, so the initial shift still matters (Fig. 8).

What we do, at classroom scale, on the bundled 8x8 digits with :func:`minibnn.models.vgg_small` (its
64-64-128-128 channels and 512-512 units scaled down by a width multiplier; first and last layers full
precision; conv -> pool -> BatchNorm -> sign as in the paper):

1. shift sweep, max and average pooling: every binary activation is
   ``ShiftedThreshold("ste_sign", t)``; final test accuracy, first-epoch training accuracy, and the fraction
   of +1 outputs of each binary activation layer on the test set (:class:`minibnn.metrics.PlusOneFraction`);
2. the shift picked by the first-epoch training accuracy (max pooling), against the best final one and t = 0;
3. trainable thresholds (``TrainableThreshold``, one per channel) initialised at t0 in {-2, -1, 0, 1, 2}:
   final accuracy (Fig. 8a), the effective threshold th - β of the second binary activation layer over its
   channels (Fig. 8b), and, for t0 = 0, how exactly β = -th (Fig. 7: the largest |β + (th - t0)| and the
   correlation of β and th over channels).

Adam at 5e-3 (Adam is the paper's default optimizer), learning rate divided by 10 at half and three quarters of the
epochs, mean ± std over seeds.

Run it:

    minibnn experiment threshold-shift --quick        # 19 configs x 3 seeds, 8 epochs, shifts -1.2 ... 1.2
    minibnn experiment threshold-shift --full         # full: 10 seeds (as the paper), 15 epochs, width 1/2,
                                                      # shifts -2 ... 2 by 0.4

Run time on 2 cores (2 worker processes; measured on the project's 2-core machine, which other jobs kept at a
load average of 2-3): tiny 2 s; quick 1.9 min; full 18.7 min (270 runs; published with its verdict
in the docs' full-size results, ``docs/results/threshold-shift``); ``--seeds 3`` cuts it to about 6 min.
"""
from __future__ import annotations

import math
from typing import Any, Dict, List

import numpy as np

from ..metrics import PlusOneFraction
from ..quantizers import ShiftedThreshold, TrainableThreshold
from ..random import manual_seed
from ..tensor import Tensor, no_grad
from .recipe import binary_layers, build_model, lr_of, norm_layers, train, width_of
from .report import fmt_pm, md_table
from .studies import COMMON_OPTIONS, STUDIES, Study

_TRAINING = dict(batch_size=64, lrs={"vgg-small": 5e-3}, milestones=(0.5, 0.75), arch="vgg-small")


@STUDIES.register("threshold-shift")
class ThresholdShift(Study):
    name = "threshold-shift"
    position = 4
    choices = {"pools": ("max", "avg")}
    title = "Shifted sign thresholds, max vs average pooling, trainable thresholds (Kim et al. 2021, Figs. 4, 6-8)"
    metric = "final_acc"
    sizes = {
        "tiny": {**COMMON_OPTIONS, **_TRAINING, "train_limit": 256, "test_limit": 128, "epochs": 1,
                 "widths": {"vgg-small": 1 / 16}, "shifts": (0.0, 1.0), "pools": ("max", "avg"),
                 "trainable_inits": (0.0,)},
        "quick": {**COMMON_OPTIONS, **_TRAINING, "epochs": 8, "widths": {"vgg-small": 1 / 4},
                  "shifts": (-1.2, -0.8, -0.4, 0.0, 0.4, 0.8, 1.2), "pools": ("max", "avg"),
                  "trainable_inits": (-2.0, -1.0, 0.0, 1.0, 2.0)},
        "full": {**COMMON_OPTIONS, **_TRAINING, "epochs": 15, "widths": {"vgg-small": 1 / 2},
                 "shifts": (-2.0, -1.6, -1.2, -0.8, -0.4, 0.0, 0.4, 0.8, 1.2, 1.6, 2.0), "pools": ("max", "avg"),
                 "trainable_inits": (-2.0, -1.0, 0.0, 1.0, 2.0)},
    }
    default_seeds = {"tiny": 2, "quick": 3, "full": 10}

    def configs(self, opts: Dict[str, Any]) -> List[Dict[str, Any]]:
        out = [{"label": f"shift/{pool}/{float(t):g}", "kind": "shift", "pool": pool, "t": float(t)}
               for pool in opts["pools"] for t in opts["shifts"]]
        out += [{"label": f"trainable/{float(t):g}", "kind": "trainable", "pool": "max", "t": float(t)}
                for t in opts["trainable_inits"]]
        return out

    def run_one(self, config: Dict[str, Any], seed: int, opts: Dict[str, Any]) -> Dict[str, Any]:

        data = self.data(opts)
        manual_seed(seed)
        model = build_model(opts["arch"], data, width_of(opts, opts["arch"]), pool=config["pool"])
        layers = binary_layers(model)
        for _, layer in layers:
            if config["kind"] == "shift":
                layer.input_quantizer = ShiftedThreshold("ste_sign", config["t"])
            else:
                channels = getattr(layer, "in_channels", None) or layer.in_features
                layer.input_quantizer = TrainableThreshold(channels, "ste_sign", init=config["t"])
        log = train(model, data, epochs=opts["epochs"], lr=lr_of(opts, opts["arch"]),
                    batch_size=opts["batch_size"], seed=seed,
                    milestones=opts["milestones"])
        out: Dict[str, Any] = {"final_acc": log["final_acc"], "first_epoch_train_acc": log["train_acc"][0],
                               "diverged": float(log["diverged_epoch"] is not None)}
        # +1 fraction of each binary activation layer, over the test set, in evaluation mode
        tracker = PlusOneFraction([layer.input_quantizer for _, layer in layers])
        _forward_test_set(model, data)
        for k, fraction in enumerate(tracker.fractions().values(), start=1):
            out[f"plus1_layer{k}"] = fraction
        tracker.detach()
        if config["kind"] == "trainable":
            out.update(_threshold_vs_bias(model, layers, config["t"]))
        out["test_acc_curve"] = log["test_acc"]
        out["train_acc_curve"] = log["train_acc"]
        return out

    def analyse(self, result) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        shifts = [float(t) for t in result.options["shifts"]]
        for pool in result.options["pools"]:
            rows = [result.row(f"shift/{pool}/{t:g}") for t in shifts]
            final = [r["final_acc_mean"] for r in rows]
            first = [r["first_epoch_train_acc_mean"] for r in rows]
            best = int(np.argmax(final))
            chosen = int(np.argmax(first))
            zero = shifts.index(0.0) if 0.0 in shifts else None
            out[pool] = {"best_shift": shifts[best], "best_acc": final[best],
                         "chosen_shift_by_first_epoch": shifts[chosen], "chosen_acc": final[chosen],
                         "acc_at_0": final[zero] if zero is not None else None,
                         "spearman_first_epoch_vs_final": _spearman(first, final),
                         "mean_acc_positive_shifts": _mean([a for t, a in zip(shifts, final) if t > 0]),
                         "mean_acc_negative_shifts": _mean([a for t, a in zip(shifts, final) if t < 0])}
        return out

    def markdown(self, result) -> str:
        o = result.options
        shifts = [float(t) for t in o["shifts"]]
        lines = [f"# {self.title}", "",
                 f"vgg-small (width {width_of(o, o['arch']):g}) on {o['dataset']}, {o['epochs']} epochs, "
                 f"{len(result.seeds)} seeds. Accuracies in %.", "",
                 "**Fig. 4a / 4d: test accuracy vs threshold shift; Fig. 6: first-epoch train accuracy**", ""]
        header = ["shift t"] + [h for p in o["pools"] for h in (f"{p}-pool test acc", f"{p}-pool 1st-epoch train acc")]
        rows = [[f"{t:+.1f}"] + [c for p in o["pools"] for c in (result.pm(f"shift/{p}/{t:g}", "final_acc"),
                                                                  result.pm(f"shift/{p}/{t:g}",
                                                                            "first_epoch_train_acc"))]
                for t in shifts]
        lines += [md_table(header, rows), ""]
        for pool, a in result.analysis.items():
            lines.append(f"- {pool} pooling: best final accuracy at t = {a['best_shift']:+.1f} "
                         f"({a['best_acc']:.2f}%); t = 0 gives {_num(a['acc_at_0'])}%; mean over t > 0 "
                         f"{_num(a['mean_acc_positive_shifts'])}% vs t < 0 {_num(a['mean_acc_negative_shifts'])}%; "
                         f"first-epoch train accuracy picks t = {a['chosen_shift_by_first_epoch']:+.1f} "
                         f"({a['chosen_acc']:.2f}% final); Spearman ρ(first epoch, final) = "
                         f"{_num(a['spearman_first_epoch_vs_final'])}")
        lines += ["", "Paper (CIFAR-10, vgg-small): with max pooling accuracy rises only for t > 0, best at t = 1.2 "
                  "(88.55% → about 89.5%); with average pooling it rises for |t| > 0 on both sides; the first-epoch "
                  "train accuracy and the final accuracy peak at the same shift (Fig. 6).", ""]
        layer_keys = sorted((k for k in result.summary[0] if k.startswith("plus1_layer") and k.endswith("_mean")),
                            key=lambda k: int(k[len("plus1_layer"):-len("_mean")]))
        names = [k[len("plus1_"):-len("_mean")] for k in layer_keys]
        after_pool = _after_pool_layers(o)
        picks = [t for t in (0.0, 1.2 if 1.2 in shifts else max(shifts)) if t in shifts]
        header = ["config"] + [n + (" (after pool)" if i + 1 in after_pool else "") for i, n in enumerate(names)]
        rows = []
        for pool in o["pools"]:
            for t in picks:
                row = result.row(f"shift/{pool}/{t:g}")
                rows.append([f"{pool}-pool, t = {t:+.1f}"] + [f"{row[k]:.3f}" for k in layer_keys])
        lines += ["**Fig. 4b / 4c: fraction of +1 outputs per binary activation layer (test set)**", "",
                  md_table(header, rows), "",
                  "Paper: with t = 0 the layers after a max pool output fewer +1 than -1, the others about half; "
                  "with t = 1.2 every layer outputs mostly -1.", ""]
        inits = [float(t) for t in o["trainable_inits"]]
        if inits:
            rows = []
            for t in inits:
                row = result.row(f"trainable/{t:g}")
                rows.append([f"{t:+.1f}", result.pm(f"trainable/{t:g}", "final_acc"),
                             fmt_pm(row["effective_threshold_mean_mean"], row["effective_threshold_std_mean"], 2),
                             f"{row['bias_plus_threshold_change_maxabs_mean']:.2e}",
                             _num(row["corr_bias_threshold_mean"], 4)])
            lines += ["**Figs. 7-8: trainable thresholds (one per channel, max pooling)**", "",
                      md_table(["initial threshold t0", "test acc", "effective threshold th - β (layer 2: mean ± "
                                "std over channels)", "max |β + (th - t0)|", "corr(β, th)"], rows), "",
                      "Paper: β = -th channel by channel (Fig. 7); the accuracy depends on t0 and the effective "
                      "thresholds stay near their initial values (Fig. 8).", ""]
        return "\n".join(lines)

    def plot(self, result, fig) -> None:
        o = result.options
        axes = fig.subplots(1, 3)
        shifts = [float(t) for t in o["shifts"]]
        for k, pool in enumerate(o["pools"]):
            rows = [result.row(f"shift/{pool}/{t:g}") for t in shifts]
            axes[0].errorbar(shifts, [r["final_acc_mean"] for r in rows], yerr=[r["final_acc_std"] for r in rows],
                             marker="o", capsize=3, color=f"C{k}", label=f"{pool} pool: final test")
            axes[0].plot(shifts, [r["first_epoch_train_acc_mean"] for r in rows], ls=":", marker=".",
                         color=f"C{k}", label=f"{pool} pool: 1st-epoch train")
        if min(shifts) <= 1.2 <= max(shifts):
            axes[0].axvline(1.2, color="gray", ls=":", label="paper's best t (vgg-small, CIFAR-10)")
        axes[0].set_xlabel("threshold shift t")
        axes[0].set_ylabel("accuracy (%)")
        axes[0].set_title("Figs. 4a, 4d, 6")
        axes[0].legend(fontsize=7)
        layer_keys = sorted((k for k in result.summary[0] if k.startswith("plus1_layer") and k.endswith("_mean")),
                            key=lambda k: int(k[len("plus1_layer"):-len("_mean")]))
        x = np.arange(1, len(layer_keys) + 1)
        pool = "max" if "max" in o["pools"] else o["pools"][0]
        for k, t in enumerate(t for t in (0.0, 1.2) if t in shifts):
            row = result.row(f"shift/{pool}/{t:g}")
            axes[1].bar(x + 0.4 * k - 0.2, [row[key] for key in layer_keys], 0.4, label=f"t = {t:+.1f}")
        axes[1].axhline(0.5, color="gray", lw=0.8)
        axes[1].set_xlabel("binary activation layer")
        axes[1].set_ylabel("fraction of +1")
        axes[1].set_title(f"Figs. 4b, 4c ({pool} pool)")
        axes[1].legend(fontsize=7)
        inits = [float(t) for t in o["trainable_inits"]]
        if inits:
            rows = [result.row(f"trainable/{t:g}") for t in inits]
            axes[2].errorbar(inits, [r["effective_threshold_mean_mean"] for r in rows],
                             yerr=[r["effective_threshold_std_mean"] for r in rows], marker="o", capsize=3,
                             label="effective threshold th - β (layer 2)")
            axes[2].plot(inits, inits, ls="--", color="gray", label="initial value")
            twin = axes[2].twinx()
            twin.plot(inits, [r["final_acc_mean"] for r in rows], color="C3", marker="s", label="test acc")
            twin.set_ylabel("test accuracy (%)", color="C3")
            axes[2].set_xlabel("initial threshold t0")
            axes[2].set_ylabel("th - β after training")
            axes[2].set_title("Fig. 8: trainable thresholds")
            axes[2].legend(fontsize=7, loc="upper left")


def _forward_test_set(model, data) -> None:

    model.eval()
    with no_grad():
        for start in range(0, len(data.y_test), 512):
            model(Tensor(np.asarray(data.x_test[start:start + 512])))
    model.train()


def _threshold_vs_bias(model, layers, t0: float) -> Dict[str, float]:
    """Fig. 7 and 8b for the 2nd binary activation layer: th - β over its channels, and β against th.

    The norm feeding a layer is the last norm before it in forward order (for vgg-small's 2nd binary
    activation: conv -> max-pool -> BatchNorm -> threshold).
    """
    names = [n for n, _ in norm_layers(model)]
    norms = dict(norm_layers(model))
    layer_name, layer = layers[1] if len(layers) > 1 else layers[0]
    order = [n for n, _ in model.named_modules()]
    before = [n for n in names if order.index(n) < order.index(layer_name)]
    norm = norms[before[-1]]
    th = np.asarray(layer.input_quantizer.threshold.data, dtype=np.float64)
    beta = np.asarray(norm.bias.data, dtype=np.float64)
    if th.shape != beta.shape:  # a flattened input: one threshold per feature, not per norm channel
        return {"effective_threshold_mean": math.nan, "effective_threshold_std": math.nan,
                "bias_plus_threshold_change_maxabs": math.nan, "corr_bias_threshold": math.nan}
    effective = th - beta
    corr = float(np.corrcoef(beta, th)[0, 1]) if np.std(beta) > 0 and np.std(th) > 0 else math.nan
    return {"effective_threshold_mean": float(effective.mean()), "effective_threshold_std": float(effective.std()),
            "bias_plus_threshold_change_maxabs": float(np.max(np.abs(beta + (th - t0)))),
            "corr_bias_threshold": corr}


def _after_pool_layers(opts: Dict[str, Any]) -> List[int]:
    """1-based indices of the binary activation layers that follow a pooling (vgg-small: inputs of conv3 and
    of the first fully connected layer)."""
    return [2, 4] if opts["arch"] == "vgg-small" else []


def _spearman(a: List[float], b: List[float]) -> float:
    if len(a) < 3:
        return math.nan
    ra = np.argsort(np.argsort(a)).astype(float)
    rb = np.argsort(np.argsort(b)).astype(float)
    if ra.std() == 0 or rb.std() == 0:
        return math.nan
    return float(np.corrcoef(ra, rb)[0, 1])


def _mean(values: List[float]) -> float:
    return float(np.mean(values)) if values else math.nan


def _num(value, digits: int = 2) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"
