"""The family-wise agreement rule shared by the theory tests.

A prediction agrees with a Monte-Carlo measurement when |predicted - measured| <= Z·stderr. Z is chosen so
that a whole test file making at most ``max_comparisons`` such comparisons fails by chance with probability at
most ``alpha`` (Bonferroni over two-sided normal tails): Z = Φ⁻¹(1 - α / (2m)), about 6 for α = 1e-6,
m = 600. The comparisons are counted, and a module fixture asserts the count stayed within m.
"""
from __future__ import annotations

from dataclasses import replace

import pytest
from scipy import stats


class Family:
    """A family of Monte-Carlo comparisons with a joint false-failure rate ``alpha``."""

    def __init__(self, max_comparisons: int, alpha: float = 1e-6):
        self.max_comparisons, self.alpha = max_comparisons, alpha
        self.z = float(stats.norm.isf(alpha / (2 * max_comparisons)))
        self.count = 0

    def agrees(self, check) -> bool:
        """Whether a theory ``Check`` agrees at the family's Z (and count it)."""
        self.count += 1
        return check.agrees_at(self.z)

    def assert_agrees(self, check) -> None:
        assert self.agrees(check), f"{check!r} (family-wise Z = {self.z:.2f})"

    def assert_rejected(self, check, wrong: float) -> None:
        """The same check with a wrong prediction must disagree."""
        bad = replace(check, predicted=float(wrong), z=self.z)
        assert not bad.agrees, f"wrong formula not rejected: {bad!r}"

    def fixture(self):
        """A module-scoped autouse fixture asserting that no more than ``max_comparisons`` ran."""

        @pytest.fixture(scope="module", autouse=True)
        def _family_size():
            yield
            assert self.count <= self.max_comparisons, (
                f"{self.count} comparisons ran, but Z assumed at most {self.max_comparisons}: raise it")

        return _family_size
