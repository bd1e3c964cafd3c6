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
    if isinstance(loss, MSELoss):
        diff = y - target
        if keep is not None:
            mask = keep.reshape(keep.shape + (1,) * (y.dim() - keep.dim())).expand_as(y)
            diff = torch.where(mask, diff, torch.zeros_like(diff))
            count = mask.sum()
        else:
            count = torch.tensor(y.numel())
        total = (diff * diff).sum()
    elif isinstance(loss, CrossEntropyLoss):
        counts = target != loss.ignore_index
        if keep is not None:
            counts = counts & keep
        safe = torch.where(counts, target, torch.zeros_like(target))
        picked = torch.log_softmax(y, dim=-1).gather(-1, safe.unsqueeze(-1)).squeeze(-1)
        total = -torch.where(counts, picked, torch.zeros_like(picked)).sum()
        count = counts.sum()
    else:
        raise SpecError(
            f"engine='torch' computes mse and cross_entropy; {type(loss).__name__} has no torch "
            "twin yet: train it with engine='numpy'"
        )
    return total if loss.reduction == "sum" else total / count.to(total.dtype)
