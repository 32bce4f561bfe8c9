"""Kernel and layer fuzz in the suite (issue 10): every XNOR entry point and the layer entry points, on every
available kernel path, each path in a subprocess so that a crash (a signal) or a hang (a time bound) fails the
test instead of ending the run. hypothesis draws the calls (and shrinks a failure); valid calls must equal
minibnn.xnor.packing bit for bit, invalid ones raise the library's own TypeError/ValueError naming the argument.
The engine is tests/kernel_fuzz.py; the long run is ``python benchmarks/fuzz_kernels.py`` (12,000 calls a path).
"""
from __future__ import annotations

import numpy as np
import pytest

import kernel_fuzz
from minibnn import xnor

PATHS = list(xnor.available_paths())


def _report(results):
    lines = []
    for path, r in results.items():
        if r["crash"] or r["hang"] or r["failures"]:
            lines.append(f"{path}: crash={r['crash']!r:.600} hang={r['hang']} failures={r['failures'][:5]}")
    return "\n".join(lines)


@pytest.mark.parametrize("target, calls", [("kernels", 250), ("layers", 120)])
def test_fuzzed_calls_on_every_path_in_subprocesses(target, calls):
    results = kernel_fuzz.run_paths(PATHS, calls, seed=2026, engine="hypothesis", timeout=90, target=target)
    assert not _report(results), _report(results)
    for path, r in results.items():
        assert r["calls"] >= calls, (path, r["calls"])


def test_the_runner_reports_a_worker_that_dies():
    results = kernel_fuzz.run_paths(["no-such-path"], 5, seed=0, engine="random", timeout=60)
    assert results["no-such-path"]["crash"]


def test_empty_batch_with_huge_padding_raises_the_librarys_error():
    x, w = np.zeros((0, 1, 1, 1), np.uint64), np.zeros((3, 1, 1, 1), np.uint64)
    with pytest.raises(ValueError, match=r"^xnor\.conv2d: .*(padding|output)"):
        xnor.conv2d(x, w, 1, padding=2 ** 31 - 1, scale=np.ones(3, np.float32))
