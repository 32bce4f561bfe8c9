"""minibnn.nn: the building blocks of a network in one place, the names a PyTorch or Larq user looks for.

Nothing is defined here; each name comes from the module that implements it:

* containers (:mod:`minibnn.module`): ``Module``, ``Parameter``, ``Sequential``, ``ModuleList``;
* layers (:mod:`minibnn.layers`): ``Linear``, ``Conv2d``, ``BatchNorm1d``, ``BatchNorm2d``, ``MaxPool2d``,
  ``AvgPool2d``, ``Flatten``, ``Dropout``, ``Identity`` and the activations ``ReLU``, ``ReLU6``, ``Hardtanh``,
  ``Tanh``, ``Sigmoid``, ``LeakyReLU``, ``PReLU``;
* quantized layers (:mod:`minibnn.quantized`): ``QuantLinear``, ``QuantConv2d`` and the BinaryNet presets
  ``BinaryLinear``, ``BinaryConv2d``;
* normalization variants (:mod:`minibnn.normalization`, Sari et al. 2019): ``FixedScaleNorm``,
  ``CentredNorm`` and the factory ``make_norm``;
* losses (:mod:`minibnn.losses`): ``CrossEntropyLoss``, ``MSELoss``, ``SquaredHingeLoss``;
* ``functional``: the same operations as functions on tensors (``nn.functional.relu(x)``).

Example: BinaryNet's multilayer perceptron (Hubara et al. 2016) and one backward pass.

    >>> import numpy as np
    >>> from minibnn import nn
    >>> model = nn.Sequential(
    ...     nn.Flatten(),
    ...     nn.BinaryLinear(784, 256, bias=False), nn.BatchNorm1d(256), nn.Hardtanh(),
    ...     nn.BinaryLinear(256, 10, bias=False), nn.BatchNorm1d(10),
    ... )
    >>> x, labels = np.random.default_rng(0).normal(size=(32, 1, 28, 28)), np.arange(32) % 10
    >>> loss = nn.CrossEntropyLoss()(model(x), labels)
    >>> loss.backward()
    >>> model[1].weight.grad.shape                    # the latent float weights get the gradient
    (256, 784)
"""
from . import functional
from .layers import (AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Flatten, GlobalAvgPool2d, Hardtanh,
                     Identity, LeakyReLU, Linear, MaxPool2d, PReLU, ReLU, ReLU6, Sigmoid, Tanh)
from .losses import CrossEntropyLoss, MSELoss, SquaredHingeLoss
from .module import Module, ModuleList, Parameter, Sequential
from .normalization import CentredNorm, FixedScaleNorm, make_norm
from .quantized import BinaryConv2d, BinaryLinear, QuantConv2d, QuantLinear

__all__ = [
    "Module", "Parameter", "Sequential", "ModuleList",
    "Linear", "Conv2d", "BatchNorm1d", "BatchNorm2d", "MaxPool2d", "AvgPool2d", "Flatten", "Dropout", "Identity",
    "GlobalAvgPool2d", "ReLU", "ReLU6", "Hardtanh", "Tanh", "Sigmoid", "LeakyReLU", "PReLU",
    "QuantLinear", "QuantConv2d", "BinaryLinear", "BinaryConv2d",
    "FixedScaleNorm", "CentredNorm", "make_norm",
    "CrossEntropyLoss", "MSELoss", "SquaredHingeLoss",
    "functional",
]
