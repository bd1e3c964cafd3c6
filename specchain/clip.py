"""Global gradient-norm clipping, like ``torch.nn.utils.clip_grad_norm_``.

``clip_grad_norm(grads, max_norm)`` rescales a grads dict (or list of arrays) in place and returns
the norm before clipping; ``specchain.optim`` re-exports it next to the optimizers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from specchain.types import SpecError
from specchain.validate import check_float_array, check_number, out_of_range


def clip_grad_norm(
    grads: Mapping[str, np.ndarray] | list[np.ndarray],
    max_norm: float,
    norm_type: float | str = 2.0,
    error_if_nonfinite: bool = False,
) -> float:
    """Rescale ``grads`` in place so that their global norm is at most ``max_norm``.

    As ``torch.nn.utils.clip_grad_norm_``: the total is the ``norm_type``-norm of the per-array
    norms (the norm of all gradients as one vector; ``norm_type`` ``inf`` or ``"inf"`` takes the
    largest magnitude), every array is multiplied by ``min(max_norm / (total + 1e-6), 1)``, and
    the total norm *before* clipping is returned. A NaN or infinite total raises ``SpecError``
    when ``error_if_nonfinite`` is set; otherwise it is applied anyway, as torch does (NaN
    gradients stay NaN, infinite norms zero the finite entries).
    """
    max_norm = check_number("clip_grad_norm", "max_norm", max_norm)
    if max_norm < 0:
        raise out_of_range("clip_grad_norm", "max_norm", ">= 0", max_norm)
    order = _norm_order(norm_type)
    items = list(grads.items()) if isinstance(grads, Mapping) else list(enumerate(grads))
    arrays = [check_float_array("clip_grad_norm", f"grads[{key!r}]", a) for key, a in items]
    if not arrays:
        return 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        norms = np.array([_vector_norm(a, order) for a in arrays])
        total = float(_vector_norm(norms, order))
    if error_if_nonfinite and not math.isfinite(total):
        raise SpecError(
            f"the total norm of order {norm_type} of the gradients is non-finite ({total}), so "
            "it cannot be clipped; pass error_if_nonfinite=False to scale by it anyway"
        )
    coef = min(max_norm / (total + 1e-6), 1.0) if not math.isnan(total) else math.nan
    with np.errstate(invalid="ignore"):  # inf * 0 = nan, as in torch
        for a in arrays:
            a *= a.dtype.type(coef)
    return total


def _norm_order(norm_type: float | str) -> float:
    what = "a number > 0 or 'inf'"
    if isinstance(norm_type, str):
        if norm_type.lower() in ("inf", "+inf"):
            return math.inf
        raise out_of_range("clip_grad_norm", "norm_type", what, norm_type)
    if check_number("clip_grad_norm", "norm_type", norm_type) <= 0:
        raise out_of_range("clip_grad_norm", "norm_type", what, norm_type)
    return float(norm_type)


def _vector_norm(a: np.ndarray, order: float) -> float:
    flat = np.abs(a.ravel().astype(np.float64, copy=False))
    if flat.size == 0:
        return 0.0
    if order == math.inf:
        return float(flat.max())
    if order == 2.0:
        return float(np.sqrt(np.dot(flat, flat)))
    if order == 1.0:
        return float(flat.sum())
    return float(np.sum(flat**order) ** (1.0 / order))
