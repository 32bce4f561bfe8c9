"""Build script for minibnn: the pure-Python package plus the XNOR-popcount extension built from kernels/."""
import os
import sys
import tempfile
import textwrap

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

# --- the compiled kernels: minibnn._xnor from kernels/ ------------------------------------------------------------
# SIMD code is selected per function (__attribute__((target(...)))) and dispatched at run time, so no -march flag
# is ever passed: a wheel built here runs on any x86-64. OpenMP is used when the compiler accepts it (a probe
# below); otherwise the kernels run serially (e.g. Apple clang). The extension is optional: if it cannot be built,
# minibnn.xnor falls back to NumPy. Set MINIBNN_REQUIRE_EXTENSION=1 to make a failed build an error instead.
KERNEL_SOURCES = ["kernels/_xnor.pyx", "kernels/cpu.c", "kernels/pack.c", "kernels/gemm.c", "kernels/bench.c",
                  "kernels/ukernel_scalar.c", "kernels/ukernel_avx2.c", "kernels/ukernel_avx512.c",
                  "kernels/ukernel_neon.c", "kernels/conv_float.c"]
OPENMP_PROBE = textwrap.dedent("""
    #include <omp.h>
    int main(void) { int s = 0;
    #pragma omp parallel for reduction(+:s)
      for (int i = 0; i < 4; i++) s += omp_get_thread_num() + i;
      return s < 0; }
""")


class BuildXnor(build_ext):
    """build_ext that picks optimisation, exact-float and OpenMP flags for the compiler it finds."""

    def _accepts(self, flags, link_flags):
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "probe.c")
            with open(src, "w") as f:
                f.write(OPENMP_PROBE)
            try:
                objects = self.compiler.compile([src], output_dir=tmp, extra_postargs=flags)
                self.compiler.link_executable(objects, "probe", output_dir=tmp, extra_postargs=link_flags)
            except Exception:
                return False
        return True

    def build_extensions(self):
        msvc = self.compiler.compiler_type == "msvc"
        if msvc:
            compile_flags, omp = ["/O2", "/fp:precise"], (["/openmp"], [])
        else:
            # -ffp-contract=off: no fused multiply-add, so scale * acc + bias rounds exactly as NumPy does
            compile_flags = ["-O3", "-ffp-contract=off", "-fno-math-errno", "-Wno-unused-function"]
            omp = (["-fopenmp"], ["-fopenmp"])
        use_omp = os.environ.get("MINIBNN_NO_OPENMP", "") == "" and self._accepts(*omp)
        for ext in self.extensions:
            ext.extra_compile_args = compile_flags + (omp[0] if use_omp else [])
            ext.extra_link_args = omp[1] if use_omp else []
        print(f"minibnn: building {', '.join(e.name for e in self.extensions)} "
              f"({'with' if use_omp else 'without'} OpenMP)")
        super().build_extensions()


def kernel_extensions():
    try:
        from Cython.Build import cythonize
    except ImportError:
        if os.environ.get("MINIBNN_REQUIRE_EXTENSION"):
            raise
        print("minibnn: Cython is not installed; building without the compiled kernels", file=sys.stderr)
        return []
    ext = Extension("minibnn._xnor", sources=KERNEL_SOURCES, include_dirs=["kernels"],
                    depends=[os.path.join("kernels", f)
                             for f in ("mb_kernels.h", "mb_internal.h", "mb_epilogue.h", "mb_bench.h")],
                    optional=not os.environ.get("MINIBNN_REQUIRE_EXTENSION"))
    return cythonize([ext], compiler_directives={"language_level": "3"}, quiet=True)


setup(
    name="minibnn",
    version="0.1.0",
    description="A from-scratch NumPy engine for binary neural networks, with XNOR-popcount kernels",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=find_packages(include=["minibnn", "minibnn.*"]),
    package_data={"minibnn.data": ["datasets/*.npz", "datasets/README.md", "datasets/LICENSE"],
                  "minibnn.course": ["lessons/[0-9][0-9]_*.py", "lessons/README.md"]},
    install_requires=["numpy>=2.0", "scipy>=1.9", "tqdm>=4.60", "threadpoolctl>=3.0"],
    extras_require={
        "test": ["pytest>=7", "hypothesis>=6.80", "matplotlib>=3.5", "jupytext>=1.14", "nbclient>=0.7", "ipykernel>=6",
                 "dask[distributed]>=2023.1"],
        "plot": ["matplotlib>=3.5"],
        "cluster": ["dask[distributed]>=2023.1"],
        "course": ["matplotlib>=3.5", "jupytext>=1.14", "nbclient>=0.7", "ipykernel>=6", "jupyterlab>=4"],
        "docs": ["sphinx>=7.2", "furo>=2024.1", "myst-nb>=1.1", "jupytext>=1.14", "ipykernel>=6", "matplotlib>=3.5",
                 "sphinx-mathjax-offline>=0.0.2"],
    },
    entry_points={"console_scripts": ["minibnn=minibnn.cli:main"]},
    ext_modules=kernel_extensions(),
    cmdclass={"build_ext": BuildXnor},
)
