"""minibnn: a from-scratch NumPy engine for binary neural networks, with XNOR-popcount kernels."""
from .tensor import (Function, Tensor, clip, concatenate, enable_grad, is_grad_enabled, matmul, maximum, minimum,
                     no_grad, pad, stack, where)
from .gradcheck import GradcheckError, gradcheck, gradcheck_module

__version__ = "0.1.0"
from .module import Module, ModuleList, Parameter, Sequential
from .random import get_rng, manual_seed
