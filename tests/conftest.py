"""Test-suite setup: one BLAS thread (small matrices on a shared 2-core machine run faster and steadier that
way) and the shared strategies module importable as ``strategies``."""
import os
import sys

for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

sys.path.insert(0, os.path.dirname(__file__))
