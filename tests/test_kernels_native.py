"""The C kernels on their own: tests/kernels_harness.c checks every kernel path the CPU runs (packing, GEMM in
each epilogue mode, real-input GEMM, convolution, max-pool) against plain C references, without Python.

Built three ways, all at once (the builds run in parallel), then run in a subprocess with a time limit:
  - natively, without OpenMP and with it (2 threads on half the cases): the x86 paths (scalar, AVX2, AVX-512);
  - for AArch64 with ``aarch64-linux-gnu-gcc -static``, run under ``qemu-aarch64``: the NEON path, which no x86
    machine runs otherwise. Needs the Debian packages gcc-aarch64-linux-gnu and qemu-user; skipped without them.
The compile flags are setup.py's: -ffp-contract=off matters, the float epilogue must round as NumPy does.
"""
import os
import shutil
import subprocess
import sysconfig

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KERNELS = ["cpu.c", "pack.c", "gemm.c", "ukernel_scalar.c", "ukernel_avx2.c", "ukernel_avx512.c", "ukernel_neon.c"]
SOURCES = [os.path.join(ROOT, "tests", "kernels_harness.c")] + [os.path.join(ROOT, "kernels", f) for f in KERNELS]
FLAGS = ["-O3", "-ffp-contract=off", "-fno-math-errno", "-Wno-unused-function"]  # as setup.py
ROUNDS = "40"  # random shapes per kind of check: ~1 s natively, ~4 s under qemu
CROSS_PACKAGES = "the Debian packages gcc-aarch64-linux-gnu and qemu-user"


def native_compiler():
    """The C compiler of this Python's build (CC), else cc / gcc / clang on PATH; None if there is none."""
    for cc in ((sysconfig.get_config_var("CC") or "").split()[:1] + ["cc", "gcc", "clang"]):
        if shutil.which(cc):
            return cc
    return None


# build name -> (compiler, extra flags, command prefix to run the binary, reason to skip or None)
def _configurations():
    cc = native_compiler()
    no_cc = None if cc else "no C compiler (cc, gcc or clang) on PATH"
    cross = shutil.which("aarch64-linux-gnu-gcc")
    qemu = shutil.which("qemu-aarch64")
    no_cross = None
    if not cross or not qemu:
        missing = " and ".join(n for n, p in (("aarch64-linux-gnu-gcc", cross), ("qemu-aarch64", qemu)) if not p)
        no_cross = f"{missing} not found: install {CROSS_PACKAGES} to run the NEON kernels under emulation"
    return {
        "native": (cc, [], [], no_cc),
        "native-openmp": (cc, ["-fopenmp"], [], no_cc),
        "aarch64-neon-qemu": (cross, ["-static", "-fopenmp"], [qemu], no_cross),
    }


CONFIGS = _configurations()


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """Start every build that can run here at once; each test waits for its own. name -> (Popen, executable)."""
    out = tmp_path_factory.mktemp("kernels_harness")
    started = {}
    for name, (cc, extra, _, skip) in CONFIGS.items():
        if skip is None:
            exe = str(out / name)
            cmd = [cc, *FLAGS, *extra, "-o", exe, *SOURCES, "-lm"]
            started[name] = (subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True), exe)
    yield started
    for proc, _ in started.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("name", list(CONFIGS))
def test_kernel_paths_match_the_references(name, builds):
    cc, extra, runner, skip = CONFIGS[name]
    if skip is not None:
        pytest.skip(skip)
    proc, exe = builds[name]
    try:
        log, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"{name}: compiling the harness took over 60 s")
    if proc.returncode != 0 and runner and ("stdio.h" in log or "-lc" in log):  # the C library is missing
        pytest.skip(f"no AArch64 C library for {cc}: install libc6-dev-arm64-cross (recommended by "
                    f"gcc-aarch64-linux-gnu):\n{log[-1000:]}")
    if proc.returncode != 0 and "-fopenmp" in extra and "omp" in log.lower():  # omp.h, -lgomp, -fopenmp
        pytest.skip(f"{cc} cannot build with -fopenmp here:\n{log[-1000:]}")
    assert proc.returncode == 0, f"{name}: the harness did not compile:\n{log[-3000:]}"

    env = dict(os.environ, OMP_WAIT_POLICY="passive")  # as minibnn sets it: the kernels may use 2 threads
    try:
        run = subprocess.run([*runner, exe, ROUNDS], capture_output=True, text=True, timeout=60, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{name}: the harness ran over 60 s")
    report = run.stdout[-6000:] + run.stderr[-2000:]
    assert run.returncode == 0, f"{name}: the harness failed (exit {run.returncode}):\n{report}"
    assert "OK: 0 mismatches" in run.stdout, report
    if name.startswith("aarch64"):
        assert "neon" in run.stdout.splitlines()[0], f"the NEON path did not run:\n{report}"
