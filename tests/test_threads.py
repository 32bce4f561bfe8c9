"""minibnn.threads: one knob for the kernels' OpenMP threads (and, when asked, NumPy's BLAS threads), and a
default that never oversubscribes a shared machine and keeps results bit-identical whatever the thread count."""
import os
import subprocess
import sys

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import minibnn
from minibnn import threads, xnor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def blas_threads():
    return sorted({lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"})


def test_set_num_threads_sets_the_kernels_blas_only_when_asked_and_num_threads_restores_them():
    before = minibnn.get_num_threads(), blas_threads()
    with minibnn.num_threads(1):
        assert minibnn.get_num_threads() == 1 and blas_threads() == [1]
        assert xnor.kernel_info()["threads"] == 1
        with minibnn.num_threads(2):
            assert minibnn.get_num_threads() == 2 and blas_threads() == [1]
            if xnor.extension_available() and xnor.kernel_info()["openmp"]:
                assert xnor.kernel_info()["threads"] == 2
            with minibnn.num_threads(2, blas=2):
                assert minibnn.get_num_threads() == 2 and blas_threads() == [2]
            assert blas_threads() == [1]
        assert minibnn.get_num_threads() == 1 and blas_threads() == [1]
    assert (minibnn.get_num_threads(), blas_threads()) == before


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True, None])
def test_bad_counts_are_refused_naming_the_argument(bad):
    with pytest.raises((TypeError, ValueError), match="set_num_threads: n must be"):
        minibnn.set_num_threads(bad)
    with pytest.raises((TypeError, ValueError), match="set_num_threads: blas must be"):
        minibnn.set_num_threads(1, blas=bad)


def run(code, **environ):
    env = {k: v for k, v in os.environ.items() if k not in ("MINIBNN_NUM_THREADS", "OMP_WAIT_POLICY")}
    env.update(environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    return done


def test_default_policy_one_blas_thread_kernels_on_every_core_and_sleeping():
    done = run("import minibnn, minibnn.xnor as x; from threadpoolctl import threadpool_info\n"
               "print(minibnn.get_num_threads(), minibnn.threads.available_cores(),\n"
               "      sorted({l['num_threads'] for l in threadpool_info() if l['user_api'] == 'blas'}),\n"
               "      x.kernel_info().get('idle_threads_sleep'))")
    assert done.returncode == 0, done.stderr
    kernels, cores, blas, sleeping = done.stdout.split(maxsplit=3)
    assert kernels == cores and blas == "[1]"
    assert sleeping.strip() in ("True", "False")   # False only without the extension or OpenMP
    if xnor.extension_available() and xnor.kernel_info()["openmp"]:
        assert sleeping.strip() == "True"


def test_the_environment_variable_sets_the_kernels_at_import():
    done = run("import minibnn; from threadpoolctl import threadpool_info\n"
               "print(minibnn.get_num_threads(), "
               "sorted({l['num_threads'] for l in threadpool_info() if l['user_api'] == 'blas'}))",
               MINIBNN_NUM_THREADS="2")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["2", "[1]"]
    bad = run("import minibnn", MINIBNN_NUM_THREADS="many")
    assert bad.returncode != 0 and "MINIBNN_NUM_THREADS must be a whole number >= 1, got 'many'" in bad.stderr


def test_worker_environment_gives_started_processes_the_count_then_restores():
    saved = os.environ.get(threads.ENV_VAR)
    with threads.worker_environment(1):
        assert os.environ[threads.ENV_VAR] == "1"
        done = run("import minibnn; print(minibnn.get_num_threads())", MINIBNN_NUM_THREADS=os.environ["MINIBNN_NUM_THREADS"])
        assert done.stdout.split() == ["1"]
    assert os.environ.get(threads.ENV_VAR) == saved


def test_the_kernels_give_the_same_bits_on_one_and_two_threads():
    """360M binary MACs: above the threads' crossover, so the second call really runs on two threads (training
    on one and two threads, BLAS included: tests/test_reproducible.py)."""
    rng = np.random.default_rng(0)
    a = xnor.pack(rng.choice([-1.0, 1.0], size=(600, 1200)).astype(np.float32))
    b = xnor.pack(rng.choice([-1.0, 1.0], size=(500, 1200)).astype(np.float32))
    results = []
    for n in (1, 2):
        with minibnn.num_threads(n):
            results.append(xnor.gemm(a, b, 1200))
    np.testing.assert_array_equal(results[0], results[1])
