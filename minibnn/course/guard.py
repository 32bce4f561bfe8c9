"""Grading that can't be gamed: while an exercise is graded, minibnn's own answer to it is out of the student's reach.

:data:`FORBIDDEN` is THE table: exercise id -> the dotted paths of the minibnn functions (or methods) that
implement that exercise's answer. While an exercise is graded, :func:`forbid` replaces each of them -- under
every name a loaded minibnn module holds it by -- with a trap. A call of the trap from the submission's code
(any frame of the call stack belongs to the submission module) is recorded and raises :class:`ForbiddenCall`
naming the function; the grader then scores the exercise 0, even if the submission caught the error. Calls
that do not come from the submission (the grader computing its reference answer) go through unchanged.

The submission is loaded *inside* :func:`forbid`, so ``from minibnn.xnor.packing import pack`` at its top binds the
trap too. Paths that do not resolve (e.g. after a rename) raise a ``LookupError`` naming the exercise, so a
renamed library function can't silently open a hole; ``tests/test_course.py`` resolves every path.

Example:
    >>> sorted(FORBIDDEN)[:2]
    ['1.1 Softplus.backward', '1.2 Hypot.backward']
    >>> FORBIDDEN["4.1 pack_rows"][0]
    'minibnn.xnor.packing.pack'
"""
from __future__ import annotations

import importlib
import sys
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Tuple

__all__ = ["FORBIDDEN", "SUBMISSION_PREFIX", "ForbiddenCall", "resolve", "forbid"]

#: the module name every loaded submission gets (``minibnn.course.grading.load_definitions``) starts with this
SUBMISSION_PREFIX = "minibnn_submission_"

#: exercise id -> the minibnn functions that implement its answer (unavailable to the submission while graded).
#: ONE table: when a library function moves or is renamed, update its path here.
FORBIDDEN: Dict[str, Tuple[str, ...]] = {
    "1.1 Softplus.backward": ("minibnn.functional.sigmoid", "minibnn.functional.SigmoidFn.forward"),
    "1.2 Hypot.backward": (),
    "2.1 ClippedSteSign.forward": ("minibnn.quantizers.ste_sign", "minibnn.quantizers.SteSignFn.forward",
                                   "minibnn.quantizers.magnitude_aware_sign"),
    "2.2 ClippedSteSign.backward": ("minibnn.quantizers.ste_sign", "minibnn.quantizers.SteSignFn.backward"),
    "2.3 signswish_derivative": ("minibnn.theory.signswish_grad", "minibnn.quantizers.sign_swish",
                                 "minibnn.quantizers.swish_sign", "minibnn.quantizers.SignSwishFn.backward",
                                 "minibnn.quantizers.SwishSignFn.backward",
                                 "minibnn.quantizers.Quantizer.pseudo_gradient"),
    "3.1 train_step": ("minibnn.training.fit", "minibnn.training._train_epoch"),
    "3.2 flip_ratio": ("minibnn.metrics.FlipRatio.update",),
    "4.1 pack_rows": ("minibnn.xnor.packing.pack", "minibnn.xnor.packing.pack_scaled", "minibnn.xnor.pack"),
    "4.2 xnor_matmul": ("minibnn.xnor.packing.gemm", "minibnn.xnor.packing.unpack", "minibnn.xnor.gemm", "minibnn.xnor.unpack"),
    "5.1 transformed_bernoulli_variance": ("minibnn.theory.bernoulli_variance",),
    "5.2 binary_dot_variance": ("minibnn.theory.binary_dot_variance", "minibnn.theory.bernoulli_variance"),
    "6.1 conv_output_size": (),
    "6.2 max_pool2d": ("minibnn.functional.max_pool2d", "minibnn.functional.MaxPool2dFn.forward",
                       "minibnn.xnor.packing.maxpool2d", "minibnn.xnor.maxpool2d"),
    "6.3 shifted_sign_fraction": ("minibnn.theory.shifted_sign_fraction",),
    "7.1 preactivation_variance": ("minibnn.theory.preactivation_variance",
                                   "minibnn.theory.preactivation_variance_as_printed",
                                   "minibnn.theory.binary_preactivation_variance"),
    "7.2 centred_norm": ("minibnn.normalization.CentredNorm.forward", "minibnn.normalization.FixedScaleNorm.forward"),
    "7.3 fold_bn_sign": ("minibnn.theory.fold_bn_sign", "minibnn.xnor.fold_threshold"),
    "8.1 signswish": ("minibnn.theory.signswish", "minibnn.quantizers.sign_swish", "minibnn.quantizers.swish_sign",
                      "minibnn.quantizers.SignSwishFn.forward", "minibnn.quantizers.SwishSignFn.forward"),
    "8.2 bnn_plus_regularizer": ("minibnn.theory.regularizer", "minibnn.regularizers.r1", "minibnn.regularizers.r2",
                                 "minibnn.regularizers.BNNPlusRegularizer.penalty"),
    "8.3 initial_alpha": ("minibnn.theory.optimal_scale", "minibnn.theory.minimise_regularizer",
                          "minibnn.scales.init_alpha", "minibnn.scales.median_abs", "minibnn.scales.mean_abs"),
    "9.1 activation_pattern": ("minibnn.theory.geometry.activation_pattern",),
    "9.2 gini": ("minibnn.theory.geometry.gini",),
    "10.1 binary_dense": ("minibnn.xnor.packing.gemm", "minibnn.xnor.packing.unpack", "minibnn.xnor.packing.threshold_bits",
                          "minibnn.xnor.gemm", "minibnn.xnor.unpack", "minibnn.theory.apply_folded_threshold"),
    "10.2 packed_bytes": ("minibnn.xnor.packing.packed_width",),
    "11.1 mean_ci": (),
    "11.2 paired_difference": (),
}


class ForbiddenCall(Exception):
    """The submission called a minibnn function that implements the answer of the exercise being graded."""


def resolve(path: str) -> Tuple[Any, str, Any]:
    """(owner, attribute name, raw attribute) of a dotted path: a module attribute or a class attribute.

    ``minibnn.xnor.packing.pack`` -> (the module, "pack", the function); ``minibnn.metrics.FlipRatio.update`` ->
    (the class, "update", the function as stored in the class's ``__dict__``). LookupError if it does not exist.
    """
    parts = path.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            owner: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for name in parts[split:-1]:
                owner = getattr(owner, name)
            if isinstance(owner, type):
                for klass in owner.__mro__:             # an inherited method: patch it where it is defined
                    if parts[-1] in vars(klass):
                        return klass, parts[-1], vars(klass)[parts[-1]]
            return owner, parts[-1], vars(owner)[parts[-1]]
        except (AttributeError, KeyError):
            break
    raise LookupError(f"resolve: {path} does not exist (was it moved or renamed? update minibnn.course.guard."
                      f"FORBIDDEN)")


def _called_from_submission() -> bool:
    frame = sys._getframe(2)
    while frame is not None:
        if str(frame.f_globals.get("__name__", "")).startswith(SUBMISSION_PREFIX):
            return True
        frame = frame.f_back
    return False


def _trap(original: Any, path: str, exercise_id: str, calls: List[str], active: List[bool]) -> Any:
    function = original.__func__ if isinstance(original, (staticmethod, classmethod)) else original

    def trap(*args, **kwargs):
        if active[0] and _called_from_submission():
            calls.append(path)
            raise ForbiddenCall(f"{path} implements the answer of exercise {exercise_id}; it is unavailable "
                                f"while that exercise is graded")
        return function(*args, **kwargs)

    trap.__name__ = getattr(function, "__name__", "trap")
    trap.__doc__ = f"unavailable while exercise {exercise_id} is graded ({path})"
    if isinstance(original, staticmethod):
        return staticmethod(trap)
    if isinstance(original, classmethod):
        return classmethod(trap)
    return trap


@contextmanager
def forbid(exercise_id: str) -> Iterator[List[str]]:
    """Within the block, the functions of ``FORBIDDEN[exercise_id]`` are traps; yields the list of trapped calls.

    Every loaded ``minibnn`` module attribute that *is* one of them (an alias such as ``from .packing import
    pack``) is replaced as well. Everything is restored on exit.
    """
    if exercise_id not in FORBIDDEN:
        raise KeyError(f"forbid: {exercise_id!r} is not in minibnn.course.guard.FORBIDDEN; add it (with () if no "
                       f"library function implements its answer)")
    calls: List[str] = []
    active = [True]          # traps a submission kept a reference to go inert on exit
    patches: List[Tuple[Any, str, Any]] = []
    try:
        for path in FORBIDDEN[exercise_id]:
            owner, name, raw = resolve(path)
            trap = _trap(raw, path, exercise_id, calls, active)
            targets = [(owner, name)]
            if not isinstance(owner, type):
                targets += [(module, attr) for module_name, module in list(sys.modules.items())
                            if module_name.split(".")[0] == "minibnn" and module is not None
                            for attr, value in list(vars(module).items()) if value is raw and module is not owner]
            for target, attr in targets:
                patches.append((target, attr, vars(target)[attr]))
                setattr(target, attr, trap)
        yield calls
    finally:
        active[0] = False
        for target, attr, value in reversed(patches):
            setattr(target, attr, value)
