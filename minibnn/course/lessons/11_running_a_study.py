# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 11 · Running one of the papers' studies, and reading it
#
# > Needs the course install: `pip install "minibnn[course]"` (matplotlib, jupytext, JupyterLab). Run it as a
# > script (`python 11_running_a_study.py`; figures and result files are saved to `./lesson_out/`) or open it
# > as a notebook (`jupyter lab`, then *Open With → Notebook*; figures show below their cells).
#
# One training run is one draw of a random experiment: another seed gives another accuracy. The papers'
# claims are comparisons — "BatchNorm beats no BatchNorm", "λ = 2 beats λ = 0" — and a comparison is only as
# good as its error bars. `minibnn.experiments` runs the papers' studies as seeded sweeps. You will
#
# 1. run Sari et al.'s BatchNorm ablation (their Table 2) at classroom size and read its table;
# 2. compute a confidence interval over seeds;
# 3. compare two variants seed by seed (a paired comparison), and see why that is sharper.
#
# **Exercises**: 11.1 `mean_ci` (2 points), 11.2 `paired_difference` (2 points). Check your work with
# `minibnn assignments grade 11_running_a_study.py`.

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

import minibnn.experiments as ex
from minibnn.course.notebook import output_dir, show

out_dir = output_dir()

# %% [markdown]
# ## 1. The studies
#
# Each study is registered by name, has three sizes (`tiny`: seconds, `quick`: minutes on 2 cores, `full`)
# and writes CSV, JSON, a Markdown table laid out like the paper's, and a plot. From a shell:
# `minibnn experiment bn-ablation --quick`.

# %%
for name in ex.names():
    print(f"{name:16s} {ex.get_study(name).title}")

# %% [markdown]
# We run `bn-ablation` in its tiny size, made a little bigger so that the networks learn something: the
# 5-hidden-layer binary MLP at 1/64 of BinaryNet's width, 640 training images, 3 epochs, three seeds, in one
# process. Any size option can be overridden like this.

# %%
SEEDS = (0, 1, 2)
result = ex.run("bn-ablation", tiny=True, seeds=SEEDS, workers=1, progress=False, out_dir=out_dir,
                train_limit=640, test_limit=359, epochs=3, widths={"mlp": 1 / 64}, lrs={"mlp": 0.01})
print(f"{len(result.runs)} runs in {result.seconds:.1f} s; files:", sorted(result.files))
print(open(result.files["markdown"], encoding="utf-8").read())

# %% [markdown]
# The table puts our numbers beside the paper's (a binarized ResNet-56 on CIFAR-10: of course the values
# differ; the *ordering* is what can be compared). "Gradient growth" measures Theorem 1 directly: without a
# scale (centred only, none) the gradient grows by orders of magnitude from the last binary layer to the
# first.
#
# ## 2. Seeds and confidence intervals
#
# Each configuration ran once per seed (the table reports each run's best epoch, as the paper does; from here
# on we use the accuracy after the last epoch, `final_acc`). Their mean estimates the expected accuracy; how far off it may be
# depends on the spread and on how many seeds we have. With n values, mean m and sample standard deviation s
# (ddof = 1), the 95% confidence interval of the expected value is m ± t·s/√n, where t is the 97.5% quantile of
# Student's t with n − 1 degrees of freedom (4.30 for n = 3, 1.96 for n → ∞).
#
# ### Exercise 11.1 — `mean_ci` (2 points)
#
# Return `(mean, half_width)` of that interval. `scipy.stats.t.ppf(0.975, n - 1)` gives t.

# %%
def mean_ci(values, level=0.95):
    """(mean, half-width) of the Student-t confidence interval of the mean of ``values``."""
    v = np.asarray(values, dtype=np.float64)
    # BEGIN SOLUTION: 11.1 mean_ci
    n = v.size
    t = stats.t.ppf(0.5 + level / 2, n - 1)
    return float(v.mean()), float(t * v.std(ddof=1) / math.sqrt(n))
    # END SOLUTION


labels = [row["label"] for row in result.summary]
cis = {label: mean_ci(result.values(label, "final_acc")) for label in labels}
for label, (mean, half) in cis.items():
    print(f"{label:15s} {mean:6.1f} ± {half:5.1f}  (seeds: "
          f"{', '.join(f'{v:.1f}' for v in result.values(label, 'final_acc'))})")

fig, ax = plt.subplots(figsize=(6, 3))
ax.errorbar(range(len(labels)), [cis[l][0] for l in labels], yerr=[cis[l][1] for l in labels], fmt="o",
            capsize=4)
ax.set_xticks(range(len(labels)), [l.split("/")[1] for l in labels])
ax.set_ylabel("test accuracy (%), 95% CI")
ax.set_title("BatchNorm ablation, 3 seeds")
show(fig, "11_confidence_intervals.png")

# %% [markdown]
# Three seeds give wide intervals: t = 4.30 is large. Intervals that overlap do not prove two configurations
# equal; intervals far apart (BatchNorm vs none) leave little doubt.
#
# ## 3. Paired comparisons
#
# Each seed fixes the data order and the initial weights *for every configuration*. So the runs of two
# configurations come in pairs, and much of what varies from seed to seed varies for both. Comparing the
# per-seed **differences** removes that shared part: the interval of the mean difference is often much
# narrower than the two separate intervals suggest.
#
# ### Exercise 11.2 — `paired_difference` (2 points)
#
# Given the values of two configurations for the same seeds (in the same order), return `(mean difference,
# half_width)`: the mean of a − b and the half-width of its 95% interval (use your `mean_ci`).

# %%
def paired_difference(a, b):
    """Mean of a − b over paired seeds, and the half-width of its 95% Student-t interval."""
    # BEGIN SOLUTION: 11.2 paired_difference
    return mean_ci(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))
    # END SOLUTION


for first, second in (("mlp/batchnorm", "mlp/fixed"), ("mlp/batchnorm", "mlp/glorot"), ("mlp/centred", "mlp/none")):
    a, b = result.values(first, "final_acc"), result.values(second, "final_acc")
    diff, half = paired_difference(a, b)
    verdict = "different" if abs(diff) > half else "not distinguishable with these seeds"
    print(f"{first} − {second}: {diff:+.1f} ± {half:.1f} points  -> {verdict}")

# %% [markdown]
# **What to remember.** A result is a distribution over seeds: report the mean *and* its interval, say how
# many seeds, and compare configurations seed by seed when they share seeds. The tiny sizes here show the
# method; the claims need `--quick` or the full size, which `minibnn experiment` runs in parallel processes.
