"""Deploy: freeze a trained binary network into a packed inference model -- bits between binary layers,
integer thresholds instead of BatchNorm and sign, XNOR-popcount kernels.

Three files, in the order a model goes through them:

* :mod:`~minibnn.deploy.fold` -- why BatchNorm + sign is one comparison: the thresholds, found on the model's
  own float32 arithmetic (Sari et al. 2019, eq. 2);
* :mod:`~minibnn.deploy.compile` -- :func:`freeze`: a Sequential model -> stages, through the layer table;
* :mod:`~minibnn.deploy.runtime` -- :class:`PackedModel`: the stages run in order, saved as one .npz;
* :mod:`~minibnn.deploy.loading` -- :func:`load`: every array and option checked, or :class:`DeployLoadError`.

Example:
    >>> import numpy as np
    >>> from minibnn import models, deploy
    >>> model = models.bnn_mlp(in_features=16, num_classes=3, hidden_units=64, rng=np.random.default_rng(0))
    >>> packed = deploy.freeze(model, (16,))
    >>> [stage.kind for stage in packed.stages]    # Flatten, Linear | BN + sign | 2 binary | BN, Hardtanh, Linear
    ['float', 'float', 'pack_signs', 'binary_dense', 'binary_dense', 'float', 'float', 'float']
    >>> x = np.random.default_rng(1).standard_normal((4, 16)).astype(np.float32)
    >>> bool(np.array_equal(packed.predict(x), model.eval()(x).data.argmax(axis=1)))
    True
"""
from .fold import FreezeError
from .compile import LAYERS, freeze
from .runtime import (FLOAT_OPS, FORMAT, STAGES, VERSION, BinaryConv, BinaryDense, BitFlatten, BitMaxPool, FloatOp,
                      PackedModel, PackSigns, SizeReport, Stage)
from .loading import DeployLoadError, load

__all__ = ["freeze", "load", "DeployLoadError", "PackedModel", "SizeReport", "FreezeError", "FORMAT", "VERSION",
           "LAYERS", "STAGES", "FLOAT_OPS", "Stage", "FloatOp", "PackSigns", "BinaryDense", "BinaryConv", "BitMaxPool", "BitFlatten"]
