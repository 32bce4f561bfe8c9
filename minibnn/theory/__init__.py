"""theory: the closed forms of the papers minibnn is built from, each with a Monte-Carlo twin that measures it.

Every ``formula(...)`` returns the predicted value; every ``measure_...(...)`` simulates the same situation in
NumPy (seeded with ``numpy.random.default_rng``) and returns a :class:`Check`: the prediction, the measured
value, its standard error and the confidence interval, with ``.agrees`` telling whether the prediction lies in
the interval. A formula that is right agrees at any sample size; a wrong one is rejected once the sample is
large enough. Where a paper's printed formula is garbled or measurably wrong, the docstring says so and gives
the corrected formula with its derivation; the printed form is kept as ``..._as_printed`` so a test can show
the check rejecting it. The ``..._network`` twins run real minibnn networks instead of a NumPy re-derivation
(BinaryLinear, SteSign, BatchNorm1d, the Tensor engine's backward, read by a probe), so they check the engine
and the formula together.

One module per paper (texts in shared/papers/):

=====================  ===================================================================================
``check``              the :class:`Check` type and the helpers every twin shares
``sari``               Sari, Belbahri & Partovi Nia 2019, "A Study on Binary Neural Networks Initialization"
``sari_batchnorm``     the same paper's BatchNorm: eqs. 1-3, V(BN(s)), V(ŝ²), sign(BN(s)) as a threshold
``sari_network``       the same paper's eq. 1 and Theorem 1 on real minibnn networks
``bnn_plus``           Darabi, Belbahri, Courbariaux & Partovi Nia 2018, "BNN+: Improved Binary Network Training"
``kim``                Kim, Park, Lee & Kim 2021, "Improving Accuracy of BNNs using Unbalanced Activation
                       Distribution"
``random_bias``        Li & Partovi Nia 2020, "Random Bias Initialization Improves Quantized Training"
``geometry``           the same paper's hyperplane geometry, measured on given weights and data
=====================  ===================================================================================

Every public function is importable from here: ``from minibnn import theory; theory.measure_binary_dot(...)``.

Example:
    >>> import numpy as np
    >>> bernoulli_variance(0.3)
    0.84
    >>> c = measure_bernoulli(0.3, n=20_000, rng=np.random.default_rng(0))[1]
    >>> c.agrees
    True
"""
from . import geometry
from .check import DEFAULT_Z, Check
from .sari import (NORM_VARIANTS, ablation_gradient_variance, bernoulli_mean, bernoulli_variance,
                   binary_dot_distribution, binary_dot_mean, binary_dot_skewness, binary_dot_variance,
                   gradient_variance, measure_ablation_gradient_variance, measure_bernoulli, measure_binary_dot,
                   measure_binary_dot_skewness, measure_gradient_variance, measure_preactivation_variance,
                   measure_theorem1, preactivation_variance, preactivation_variance_as_printed,
                   simulate_ablation_gradients, simulate_binary_mlp_gradients, theorem1_gradient_variance)
from .sari_batchnorm import (FoldedThreshold, apply_folded_threshold, batchnorm_backward, batchnorm_forward,
                             binary_dot_square_variance, bn_gradient_variance, bn_gradient_variance_as_printed,
                             bn_output_variance, fold_bn_sign, measure_binary_dot_square_variance,
                             measure_bn_gradient_variance, measure_bn_output_variance, sign_bn, sign_bn_as_printed)
from .sari_network import (ExactCheck, NetworkMoments, binary_dot_active_share, binary_mlp,
                           binary_preactivation_variance, check_batchnorm_backward_against_autograd,
                           clipped_ste_gradient_variance, measure_bn_top_layer_network,
                           measure_preactivation_variance_network, measure_theorem1_network, mlp_widths,
                           sample_binary_mlp)
from .bnn_plus import (expected_regularizer, measure_regularizer, measure_ste_spread, minimise_regularizer,
                       optimal_scale, regularizer, regularizer_gradient, signswish, signswish_closeness,
                       signswish_grad, signswish_grad_zero, ste_spread)
from .kim import (binary_dot_plus_share, clipped_normal_moments, hardtanh_skewness, leaky_relu_bn_sign_fraction,
                  measure_binary_dot_plus_share, measure_hardtanh_skewness, measure_leaky_relu_bn_sign_fraction,
                  measure_pooled_moments, measure_pooled_sign_fraction, measure_shifted_sign_fraction,
                  pooled_moments, pooled_sign_fraction, relu6_skewness, shifted_sign_fraction,
                  threshold_and_bias_gradients)
from .random_bias import (datum_hyperplane_share, expected_active_share, hyperplane_data_share,
                          measure_datum_hyperplane_share, measure_expected_active_share,
                          measure_hyperplane_data_share)

__all__ = [
    "DEFAULT_Z", "Check", "geometry",
    # Sari et al. 2019
    "bernoulli_mean", "bernoulli_variance", "measure_bernoulli", "binary_dot_mean", "binary_dot_variance",
    "measure_binary_dot", "binary_dot_distribution", "binary_dot_skewness", "measure_binary_dot_skewness",
    "preactivation_variance", "preactivation_variance_as_printed", "gradient_variance",
    "measure_preactivation_variance", "measure_gradient_variance", "theorem1_gradient_variance",
    "simulate_binary_mlp_gradients", "measure_theorem1", "NORM_VARIANTS", "ablation_gradient_variance",
    "simulate_ablation_gradients", "measure_ablation_gradient_variance",
    # Sari et al. 2019: BatchNorm
    "batchnorm_forward", "batchnorm_backward", "bn_gradient_variance", "bn_gradient_variance_as_printed",
    "measure_bn_gradient_variance", "bn_output_variance", "measure_bn_output_variance",
    "binary_dot_square_variance", "measure_binary_dot_square_variance", "FoldedThreshold", "fold_bn_sign",
    "apply_folded_threshold", "sign_bn", "sign_bn_as_printed",
    # Sari et al. 2019 on real networks
    "ExactCheck", "check_batchnorm_backward_against_autograd", "mlp_widths", "binary_mlp", "NetworkMoments",
    "sample_binary_mlp", "binary_preactivation_variance", "binary_dot_active_share",
    "clipped_ste_gradient_variance", "measure_theorem1_network", "measure_preactivation_variance_network",
    "measure_bn_top_layer_network",
    # Darabi et al. 2018 (BNN+)
    "signswish", "signswish_grad", "signswish_grad_zero", "regularizer", "regularizer_gradient",
    "expected_regularizer", "measure_regularizer", "optimal_scale", "minimise_regularizer", "ste_spread",
    "signswish_closeness", "measure_ste_spread",
    # Kim et al. 2021
    "shifted_sign_fraction", "measure_shifted_sign_fraction", "pooled_moments", "pooled_sign_fraction",
    "measure_pooled_moments", "measure_pooled_sign_fraction", "threshold_and_bias_gradients",
    "clipped_normal_moments", "hardtanh_skewness", "relu6_skewness", "measure_hardtanh_skewness",
    "binary_dot_plus_share", "measure_binary_dot_plus_share", "leaky_relu_bn_sign_fraction",
    "measure_leaky_relu_bn_sign_fraction",
    # Li & Partovi Nia 2020
    "hyperplane_data_share", "datum_hyperplane_share", "expected_active_share", "measure_hyperplane_data_share",
    "measure_datum_hyperplane_share", "measure_expected_active_share",
]
