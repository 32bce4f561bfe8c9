"""The XNOR side of minibnn: ±1 data as bits, and binary products computed with XOR and popcount.

For ±1 vectors ``a`` and ``b`` of length K, ``a · b = K - 2 · popcount(a XOR b)``: one 64-bit XOR and one
popcount do 64 multiply-accumulates. This package holds that idea in three files:

* :mod:`minibnn.xnor.packing` -- THE specification of the bit format (which bit, which word, the padding of K,
  the one sign convention: ``x < 0`` is a set bit, so 0 and NaN are +1) and a readable NumPy reference of every
  kernel;
* :mod:`minibnn.xnor.dispatch` -- the public entry points below: every argument checked (with an error naming
  it), then the work sent to the compiled kernels ``minibnn._xnor`` (AVX-512, AVX2, NEON, scalar C) or to
  NumPy;
* :mod:`minibnn.xnor.backend` -- the binary layers' forward on these
  kernels.

The public API: :func:`pack`, :func:`unpack`, :func:`pack_scaled`, :func:`gemm`, :func:`conv2d`,
:func:`maxpool2d`, :func:`fold_threshold`; the path in use: :func:`available_paths`, :func:`active_path`,
:func:`set_path`, :func:`use_path`, :func:`kernel_info` (threads: :func:`minibnn.set_num_threads`, the one
knob: the kernels' threads, and BLAS's only when asked).

Example:
    >>> import numpy as np
    >>> from minibnn import xnor
    >>> a = np.array([[1., -1., -1., 1., 1.]], dtype=np.float32)
    >>> b = np.array([[1., 1., -1., -1., 1.]], dtype=np.float32)
    >>> xnor.gemm(xnor.pack(a), xnor.pack(b), k=5)            # == a @ b.T: 5 - 2 * 2 disagreements
    array([[1]], dtype=int32)
    >>> xnor.unpack(xnor.pack(a), 5)
    array([[ 1., -1., -1.,  1.,  1.]], dtype=float32)
"""
from . import packing
from .dispatch import (ENV_VAR, EXTENSION_ERROR, MAX_EXTENT, MAX_K, PATHS, active_path, available_paths, conv2d,
                       cpu_features, extension_available, fold_threshold, gemm, kernel_info, kernel_threads,
                       maxpool2d, pack, pack_scaled, set_path, unpack, use_path)

__all__ = ["packing", "pack", "unpack", "pack_scaled", "gemm", "conv2d", "maxpool2d", "fold_threshold",
           "available_paths", "active_path", "set_path", "use_path", "extension_available", "cpu_features",
           "kernel_info", "kernel_threads", "PATHS", "ENV_VAR", "MAX_K", "MAX_EXTENT",
           "EXTENSION_ERROR"]
