"""``specchain.losses`` on torch tensors, for the torch engine: the same definitions.

``torch_loss_value(torch, loss, y, target, keep)`` is the scalar that ``loss(y, target)``
computes in numpy, over the positions where ``keep`` (bool, of the loss's positions shape, or
None for all) is True: MSE ``sum((y - t)^2) / count`` (a ``[..., F]``-less mask broadcasts over
the features), cross-entropy ``-sum(log_softmax(y)[t]) / count`` without the targets equal to
``ignore_index``. Positions left out count for nothing and get exactly zero gradient.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from specchain.losses import CrossEntropyLoss, Loss, MSELoss
from specchain.types import SpecError


def torch_loss_value(torch: ModuleType, loss: Loss, y: Any, target: Any, keep: Any) -> Any:
    """The reduced loss as a 0-d tensor (``"mean"`` or ``"sum"``)."""
    if loss.reduction == "none":
        raise SpecError(
            f"training needs a scalar loss, but {loss.name} has reduction='none'; use "
            "reduction='mean' (the default) or 'sum'"
        )
    functional = torch.nn.functional
    if isinstance(loss, MSELoss):
        if keep is None:
            return functional.mse_loss(y, target, reduction=loss.reduction)
        mask = keep.reshape(keep.shape + (1,) * (y.dim() - keep.dim())).expand_as(y)
        diff = torch.where(mask, y - target, torch.zeros_like(y))
        total, count = (diff * diff).sum(), mask.sum()
    elif isinstance(loss, CrossEntropyLoss):
        if keep is not None:  # positions left out count as ignore_index does
            target = torch.where(keep, target, torch.full_like(target, loss.ignore_index))
        if y.dim() != 2:  # [..., C] scores: positions flattened
            y, target = y.reshape(-1, y.shape[-1]), target.reshape(-1)
        return functional.cross_entropy(
            y,
            target,
            ignore_index=loss.ignore_index,
            reduction=loss.reduction,
        )
    else:
        raise SpecError(
            f"engine='torch' computes mse and cross_entropy; {type(loss).__name__} has no torch "
            "twin yet: train it with engine='numpy'"
        )
    return total if loss.reduction == "sum" else total / count.to(total.dtype)
