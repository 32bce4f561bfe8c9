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
# # 04 · Why binary networks are fast: XNOR and popcount
#
# > Needs the course install: `pip install "minibnn[course]"` (matplotlib, jupytext, JupyterLab). Run it as a
# > script (`python 04_xnor_popcount.py`; figures are saved to `./lesson_out/`) or open it as a notebook (`jupyter lab`,
# > then *Open With → Notebook*; figures show below their cells).
#
# A ±1 value needs one bit, so 64 of them fit in one machine word — and a dot product of two ±1 vectors can
# be computed 64 elements at a time with two cheap instructions, XOR and popcount. In this tutorial you
#
# 1. derive the identity  a·b = K − 2·popcount(a XOR b);
# 2. pack ±1 vectors into `uint64` words by hand with NumPy, and compare with `minibnn.xnor.packing`;
# 3. write the XNOR-popcount matrix product yourself, then compare it with minibnn's reference
#    (`minibnn.xnor.packing.gemm`) and its compiled SIMD kernels (`minibnn.xnor`);
# 4. time them against a float32 matrix product (timings are printed, not promised: they depend on the
#    machine);
# 5. see a binary convolution and a BatchNorm folded into an integer threshold.
#
# **Exercises**: 4.1 `pack_rows` (2 points), 4.2 `xnor_matmul` (2 points). Check your work with `minibnn assignments grade 04_xnor_popcount.py`
# (or `python -m minibnn.course grade 04_xnor_popcount.py`).

# %%
import time

import numpy as np

import minibnn
from minibnn import functional as F
from minibnn import xnor
from minibnn.xnor import packing

rng = np.random.default_rng(0)


def random_signs(*shape):
    """An array of ±1 (float32) of the given shape."""
    return np.where(rng.random(shape) < 0.5, -1.0, 1.0).astype(np.float32)


# %% [markdown]
# ## 1. A ±1 dot product counts disagreements
#
# For a, b ∈ {-1, +1}ᴷ each product aₖbₖ is +1 where the two agree and -1 where they differ, so
#
# $$a \cdot b = \#\text{agree} - \#\text{differ} = K - 2\,\#\text{differ}.$$
#
# Store -1 as a set bit and +1 as a clear bit (minibnn's convention, with sign(0) = +1). Two elements differ
# exactly where their bits differ, i.e. where the XOR of the bits is 1; so #differ = popcount(a XOR b), the
# number of ones in the XOR. (Some papers write XNOR and count agreements instead; it is the same idea.)

# %%
a = np.array([1, -1, -1, 1, 1, -1, 1, 1])
b = np.array([1, 1, -1, -1, 1, -1, -1, 1])
bits_a = sum(1 << k for k in range(len(a)) if a[k] < 0)      # element k -> bit k
bits_b = sum(1 << k for k in range(len(b)) if b[k] < 0)
differ = bin(bits_a ^ bits_b).count("1")
print(f"a = {bits_a:08b}  b = {bits_b:08b}  a^b = {bits_a ^ bits_b:08b}  (bits printed high to low)")
print("K - 2·popcount =", len(a) - 2 * differ, "   a·b =", int(a @ b))

# %% [markdown]
# ## 2. Packing rows into words
#
# minibnn packs along the **last axis**: element k of a row becomes bit k % 64 (least significant bit first)
# of word k // 64, so a row of K values takes W = ⌈K/64⌉ `uint64` words. The unused high bits of the last
# word are 0, i.e. padding with +1. (The full specification is the docstring of `minibnn/packing.py`.)
#
# ### Exercise 4.1 — `pack_rows` (2 points)
#
# Pack the signs of `x` (shape (..., K)): bit = 1 where x < 0. Hints: make a zero-padded boolean array of
# shape (..., W·64), reshape it to (..., W, 64), shift bit j left by j (as `uint64`) and combine the 64 of
# each word with `np.bitwise_or.reduce` (or a sum: the bits do not overlap).

# %%
def pack_rows(x):
    """Pack the signs of x (..., K) into uint64 words (..., ceil(K/64)): bit k%64 of word k//64 is x[k] < 0."""
    x = np.asarray(x)
    # BEGIN SOLUTION: 4.1 pack_rows
    k = x.shape[-1]
    words = (k + 63) // 64
    bits = np.zeros(x.shape[:-1] + (words * 64,), dtype=np.uint64)
    bits[..., :k] = x < 0
    bits = bits.reshape(x.shape[:-1] + (words, 64))
    return np.bitwise_or.reduce(bits << np.arange(64, dtype=np.uint64), axis=-1)
    # END SOLUTION


x = random_signs(3, 100)
print("shape", x.shape, "->", pack_rows(x).shape, pack_rows(x).dtype)
print("same as minibnn.xnor.packing.pack:", np.array_equal(pack_rows(x), packing.pack(x)))
print("same as the compiled xnor.pack:", np.array_equal(pack_rows(x), xnor.pack(x)))
print("unpacks back:", np.array_equal(packing.unpack(pack_rows(x), 100), x))

# %% [markdown]
# ## 3. The XNOR-popcount matrix product
#
# A `Linear` layer computes out[m, n] = Σₖ x[m, k]·w[n, k]. With packed rows that is
# K − 2·Σ_words popcount(x_words[m] XOR w_words[n]). The padding bits are 0 in both operands, so their XOR
# is 0 and they never count — as long as you subtract from the true K, not from 64·W.
#
# ### Exercise 4.2 — `xnor_matmul` (2 points)
#
# Given packed `a` (M, W) and `b` (N, W) and the true row length `k`, return the int64 matrix (M, N) of ±1
# dot products. `np.bitwise_count` counts the set bits of every element of an integer array (NumPy ≥ 2.0).

# %%
def xnor_matmul(a, b, k):
    """(M, N) int64 matrix of k - 2·popcount(a[m] XOR b[n]) for packed rows a (M, W) and b (N, W)."""
    # BEGIN SOLUTION: 4.2 xnor_matmul
    differ = np.bitwise_count(a[:, None, :] ^ b[None, :, :]).sum(axis=-1, dtype=np.int64)
    return k - 2 * differ
    # END SOLUTION


x, w = random_signs(5, 100), random_signs(7, 100)          # K = 100: one full word and a padded one
mine = xnor_matmul(packing.pack(x), packing.pack(w), 100)
print("equals x @ wᵀ:", np.array_equal(mine, (x @ w.T).astype(np.int64)))
print(mine[:2])

# %% [markdown]
# ## 4. minibnn's kernels, and a timing
#
# `minibnn.xnor.packing.gemm` is the readable NumPy reference, essentially your function. `minibnn.xnor.gemm` runs
# compiled C with SIMD popcounts (AVX-512 VPOPCNTDQ, AVX2, NEON or plain 64-bit popcount, picked for this
# CPU at run time) on OpenMP threads, and checks its arguments first.

# %%
print("kernel paths on this machine:", xnor.available_paths(), " active:", xnor.active_path())
M, N, K = 256, 256, 2048
x, w = random_signs(M, K), random_signs(N, K)
px, pw = xnor.pack(x), xnor.pack(w)
reference = (x @ w.T).astype(np.int64)
print("xnor.gemm    == x @ wᵀ:", np.array_equal(xnor.gemm(px, pw, K), reference))
print("packing.gemm == x @ wᵀ:", np.array_equal(packing.gemm(px, pw, K), reference))
print("yours        == x @ wᵀ:", np.array_equal(xnor_matmul(px, pw, K), reference))


def best_time(fn, repeat=20):
    """The fastest of `repeat` runs after one warm-up run, in seconds (the least disturbed by other work)."""
    fn()                                   # warm-up: first-touch memory, start the kernel's threads
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def one_thread_gemm():
    with minibnn.num_threads(1):            # minibnn's one thread knob, restored after
        return best_time(lambda: xnor.gemm(px, pw, K))


t_float = best_time(lambda: x @ w.T)
rows = [("float32 matmul (BLAS)", t_float)]
if xnor.active_path() == "numpy":       # no compiled kernels here: xnor.gemm runs the NumPy fallback
    rows.append(("xnor.gemm (NumPy fallback)", best_time(lambda: xnor.gemm(px, pw, K), repeat=3)))
else:
    rows.append((f"xnor.gemm ({xnor.active_path()}, 1 thread)", one_thread_gemm()))
    rows.append((f"xnor.gemm ({xnor.active_path()}, up to {minibnn.get_num_threads()} threads)",
                 best_time(lambda: xnor.gemm(px, pw, K))))
rows.append(("packing.gemm (NumPy reference)", best_time(lambda: packing.gemm(px, pw, K), repeat=3)))
rows.append(("your xnor_matmul", best_time(lambda: xnor_matmul(px, pw, K), repeat=3)))
print(f"\n({M} x {K}) times ({K} x {N}):")
for name, seconds in rows:
    print(f"  {name:34s} {seconds * 1e3:8.3f} ms   (speed {t_float / seconds:6.2f}x float32's)")
print(f"  packing x itself with xnor.pack    {best_time(lambda: xnor.pack(x)) * 1e3:8.3f} ms")

# %% [markdown]
# On a quiet machine the compiled kernel is typically ten times faster than float32 BLAS or more (here
# 2048 multiply-adds become 32 XOR + popcount pairs), while the NumPy versions are slower: NumPy builds a
# temporary (M, N, W) array. More threads help on an idle machine; on a busy one (say, while a test suite
# runs) threads wait for each other and a single thread can win — which is why benchmarks report what they
# measured instead of promising a speed-up. Memory shrinks 32× too: a float32 takes 32 bits, a packed sign 1.

# %%
print(f"weights as float32: {w.nbytes / 1024:.0f} KiB, packed: {pw.nbytes / 1024:.0f} KiB")

# %% [markdown]
# ## 5. Binary convolution
#
# A convolution is a matrix product between each image patch and each filter. The kernels pack the
# **channels** of each pixel (layout NHWC: batch, height, width, channels), so a pixel's C values become
# ⌈C/64⌉ words. Padding with +1 keeps the input binary (a +1 pixel packs as zero words). We compare with
# minibnn's float convolution on the same ±1 data (layout NCHW).

# %%
images = random_signs(2, 70, 9, 9)          # N, C, H, W  (70 channels: 2 words per pixel, one padded)
filters = random_signs(16, 70, 3, 3)        # O, C, kh, kw
expected = F.conv2d(images, filters, padding=1, pad_value=1.0).data          # (2, 16, 9, 9)
packed_images = xnor.pack(np.ascontiguousarray(images.transpose(0, 2, 3, 1)))   # (2, 9, 9, 2)
packed_filters = xnor.pack(np.ascontiguousarray(filters.transpose(0, 2, 3, 1)))  # (16, 3, 3, 2)
out = xnor.conv2d(packed_images, packed_filters, channels=70, padding=1, pad_value=1)   # (2, 9, 9, 16)
print("packed", packed_images.shape, "* filters", packed_filters.shape, "->", out.shape)
print("equals the float convolution:", np.array_equal(out.transpose(0, 3, 1, 2), expected.astype(np.int32)))

# %% [markdown]
# ## 6. BatchNorm + sign = an integer threshold
#
# In a binary network the accumulator of a layer goes through a BatchNorm and then a sign before the next
# layer. Sari et al. 2019 (eq. 2) note that sign(γ(acc − μ)/σ + β) only compares the *integer* acc with a
# threshold. `xnor.fold_threshold` computes it (exactly, for float32 rounding), and `xnor.gemm(...,
# threshold=...)` then writes the next layer's input directly as packed bits — no float ever leaves the
# kernel.

# %%
gamma, beta = rng.normal(size=N).astype(np.float32), rng.normal(size=N).astype(np.float32)
mean, std = rng.normal(scale=20, size=N).astype(np.float32), rng.uniform(10, 50, size=N).astype(np.float32)
scale, shift = gamma / std, beta - mean * gamma / std            # BN as acc·scale + shift
threshold, direction = xnor.fold_threshold(scale, shift, K)
packed_next = xnor.gemm(px, pw, K, threshold=threshold, direction=direction)     # (M, ceil(N/64)) words
via_floats = xnor.pack(np.where(xnor.gemm(px, pw, K, scale=scale, bias=shift) >= 0, 1, -1).astype(np.int8))
print("packed outputs", packed_next.shape, packed_next.dtype, " equal to BN then sign:",
      np.array_equal(packed_next, via_floats))

# %% [markdown]
# **What to remember.** a·b = K − 2·popcount(a XOR b): one XOR and one popcount replace 64 multiply-adds, and
# the padding bits never count. The compiled kernels follow the exact bit layout of `minibnn.xnor.packing`, which
# is also their test specification. Next, `05_checking_theory.py` checks the papers' formulas numerically.
