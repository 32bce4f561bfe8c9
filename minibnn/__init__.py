"""minibnn: a from-scratch NumPy engine for binary neural networks, with XNOR-popcount kernels.

The core names are at the top level (``mb.Tensor``, ``mb.no_grad``, ``mb.Sequential``...) and every concept is a
submodule, imported here so that ``import minibnn as mb`` is enough: ``mb.layers.Linear``,
``mb.quantizers.get("ste_sign")``, ``mb.optim.Adam``, ``mb.training.fit``... The heavier, optional modules
(``theory``, ``deploy``, ``cli``) are imported on demand: ``from minibnn import theory``.
"""
from .tensor import Function, Tensor, enable_grad, is_grad_enabled, no_grad
from .ops import clip, concatenate, matmul, maximum, minimum, pad, stack, where
from .gradcheck import GradcheckError, gradcheck, gradcheck_module
from .module import Module, ModuleList, Parameter, Sequential
from .random import get_rng, manual_seed
from .threads import get_num_threads, num_threads, set_num_threads

__version__ = "0.1.0"

# The submodules, in dependency order (each only imports the ones above it).
from . import functional, registry, init, layers, losses, optim, schedulers, quantizers, scales, constraints
from . import regularizers, quantized, normalization, nn, bop, metrics, models, model_summary, checkpoint, training, data
from .model_summary import summary  # the function: minibnn.summary(model, input_shape)
