"""Fuzzed checkpoint files (issue 10, defect 8): byte flips, truncations, splices, garbage, crafted metadata,
crafted .npy headers, zip-level crafting and arrays swapped inside a file or in from another checkpoint. Every
file either raises CheckpointError naming it, or loads exactly the saved state; nothing else, nothing slow.

The mutations live in ``tests/checkpoint_fuzz.py``, whose ``main`` is the long run (5,000+ files) before a
release."""
import time

import checkpoint_fuzz


def test_every_fuzzed_checkpoint_is_refused_with_checkpoint_error_or_loads_exactly(tmp_path):
    start = time.perf_counter()
    counts, problems, slowest = checkpoint_fuzz.run(cases=440, seed=2026, folder=str(tmp_path),
                                                    max_seconds_per_case=2.0)
    assert problems == [], problems[:5]
    assert not any(outcome in ("other", "wrong") for _, outcome in counts)
    for name in checkpoint_fuzz.MUTATIONS:   # every kind of damage was tried, and most of it refused
        assert sum(v for (n, _), v in counts.items() if n == name) == 40
        assert counts[name, "refused"] >= 25, (name, counts)
    assert time.perf_counter() - start < 60


def test_the_long_run_reports_zero_other_exceptions(tmp_path, capsys):
    assert checkpoint_fuzz.main(["--cases", "22", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "exceptions other than CheckpointError: 0; wrong states loaded: 0" in out
