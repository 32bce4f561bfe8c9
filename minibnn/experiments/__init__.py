"""The papers' experiments at classroom scale: one module per study, a shared recipe, sweep and report.

=================  ========================================================  ==================================
name               what it reproduces                                        module
=================  ========================================================  ==================================
random-bias        λ sweep of the bias init U[-λ, λ], htanh vs ReLU and      :mod:`.random_bias`
                   binary nets (Li & Partovi Nia, Tables 1-2)
init-variance      constant-variance init σ² in 1e-1 ... 1e-4 vs Glorot      :mod:`.init_variance`
                   (Sari et al. 2019, Table 1)
bn-ablation        BatchNorm / Glorot scale / fixed scale / centred only /   :mod:`.bn_ablation`
                   none (Sari et al. 2019, Table 2)
threshold-shift    sign-threshold shift sweep, max vs average pooling,       :mod:`.threshold_shift`
                   first-epoch selection, trainable threshold vs BN bias,
                   +1 fraction per layer (Kim et al. 2021, Figs. 4, 6-8)
ste-ablation       htanh / tanh / bireal / SS_5 / SS_10 / SS_t x R1 / R2 /   :mod:`.ste_ablation`
                   XNOR / none (Darabi et al. 2018, BNN+ Table 1)
=================  ========================================================  ==================================

What the studies share, one module each:

=============  ==============================================================================================
``studies``    the :class:`Study` base class and the registry ``STUDIES`` (``@STUDIES.register(NAME)``)
``recipe``     the data, the models and one training run
``sweep``      :func:`run_study`: one run per (config, seed), stored as it finishes, skipped when rerun
``executors``  where the runs go: this process, worker processes, a Dask cluster
``store``      the stored runs: one JSON file each, keyed by a hash of the run's configuration
``report``     the files: CSV, JSON, the paper-style Markdown table, the PNG plot
``command``    ``minibnn experiment NAME`` (registered in :mod:`minibnn.cli`)
=============  ==============================================================================================

Every study runs offline on the bundled 8x8 digits by default (``dataset="mnist" | "fashion" | "cifar10"``
with ``data_root`` for the real sets), in three sizes (``quick``, the default: minutes on 2 cores; ``full``: the
closest to the paper; ``tiny``: seconds, a smoke test whose numbers mean nothing), over several seeds in
parallel processes, and writes CSV, JSON, a Markdown table laid out like the paper's (our numbers beside the
paper's) and a PNG plot.

Example:
    >>> import minibnn.experiments as ex
    >>> ex.names()
    ['random-bias', 'init-variance', 'bn-ablation', 'threshold-shift', 'ste-ablation']
    >>> result = ex.run("random-bias", tiny=True, seeds=1, workers=1, progress=False, write=False)
    >>> result.row("binary/mlp/2")["error_mean"] <= 100.0
    True

From the shell: ``minibnn experiment random-bias --quick`` (see :mod:`.command`).
"""
from __future__ import annotations

import os
from typing import Any, Optional, Sequence, Union

# the studies register themselves on import
from . import bn_ablation, init_variance, random_bias, ste_ablation, threshold_shift  # noqa: F401
from .recipe import DATASETS, load_data
from .studies import SIZES, STUDIES, Study, get_study, study_names
from .sweep import Result, run_study

__all__ = ["run", "names", "get_study", "Result", "Study", "STUDIES", "SIZES", "DATASETS", "load_data"]


def names() -> list:
    """The studies, in the order of the papers."""
    return study_names()


def run(name: str, seeds: Union[int, Sequence[int], None] = None, quick: bool = False, *, tiny: bool = False,
        full: bool = False, size: Optional[str] = None, out_dir: Optional[Union[str, os.PathLike]] = "results",
        workers: Optional[int] = None, dataset: Optional[str] = None, data_root: Optional[str] = None,
        progress: bool = True, write: bool = True, **options: Any) -> Result:
    """Run the study ``name`` and write its files to ``out_dir/name/``; return the :class:`Result`.

    Args:
        name: one of :func:`names`.
        seeds: the number N of seeds (0, ..., N-1) or a list of seeds; default: the study's for the size.
        quick, full, tiny: the size: quick (the default; minutes on 2 cores), full (the closest to the paper;
            tens of minutes) or tiny (seconds: a smoke test whose numbers mean nothing, marked so in its table
            and plot). At most one of them.
        size: ``"tiny"``, ``"quick"`` or ``"full"`` (instead of the flags).
        out_dir: the output folder (``runs.csv``, ``summary.csv``, ``results.json``, ``table.md``, ``plot.png``
            go to ``out_dir/name/``).
        workers: processes for the sweep; default ``os.cpu_count()``; 1 runs everything in this process. The
            processes are *spawned* (fresh interpreters with one BLAS thread), so a script that calls ``run``
            with ``workers > 1`` needs the usual ``if __name__ == "__main__":`` guard (notebooks and the
            ``minibnn`` command do not).
        dataset, data_root: ``"digits"`` (default), ``"spirals"``/``"gaussian"`` (synthetic, MLP only), or
            ``"mnist"``/``"fashion"``/``"cifar10"`` read from ``data_root``.
        progress: a tqdm bar over the runs.
        executor, scheduler, resume: ``executor="dask"`` or ``scheduler="tcp://host:8786"`` send the runs to
            Dask; ``resume=False`` runs again the runs stored in ``out_dir/name/runs/`` (see
            :func:`~minibnn.experiments.sweep.run_study`).
        write: False to skip the files (the Result still holds everything).
        **options: overrides of the study's options (``epochs=``, ``archs=``, ``lams=`` ...; see
            ``minibnn experiment --list``).

    Returns:
        The :class:`Result`: per-run numbers, the per-config summary (mean, std, min, max over seeds), the
        study's analysis and the paths written.
    """
    chosen = [s for s, flag in (("tiny", tiny), ("quick", quick), ("full", full)) if flag]
    if len(chosen) > 1 or (chosen and size is not None and size != chosen[0]):
        raise ValueError(f"run: choose one size; got tiny={tiny}, quick={quick}, full={full}, size={size!r}")
    size = size or (chosen[0] if chosen else "quick")
    if size not in SIZES:
        raise ValueError(f"run: size must be one of {', '.join(SIZES)}, got {size!r}")
    return run_study(name, seeds=seeds, size=size, out_dir=out_dir, workers=workers, progress=progress,
                     write=write, dataset=dataset, data_root=data_root, **options)
