"""The long kernel fuzz run (issue 10), before a release: 12,000 calls per kernel path by default, each path in
its own subprocess so a crash or a hang is counted, valid calls compared bit for bit with minibnn.xnor.packing,
invalid ones required to raise the library's own TypeError/ValueError naming the argument.

    python benchmarks/fuzz_kernels.py                      # every available path, 12,000 calls each
    python benchmarks/fuzz_kernels.py --calls 50000 --seed 7 --paths avx2,scalar

The engine is tests/kernel_fuzz.py (also used by the suite's tests/test_kernel_fuzz.py). Exit status 1 if any
path crashed, hung, gave a wrong answer or raised something else.
"""
import os
import runpy
import sys

if __name__ == "__main__":
    sys.argv[0] = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "kernel_fuzz.py")
    if not any(a.startswith("--budget") for a in sys.argv):
        sys.argv += ["--budget", "1500"]
    runpy.run_path(sys.argv[0], run_name="__main__")
