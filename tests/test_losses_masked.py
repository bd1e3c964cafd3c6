"""Losses over padded batches: ``mask=``, ``lengths=`` and a ``Padded`` y, against torch
(``nn.CrossEntropyLoss(ignore_index=...)`` and a masked MSE written out in torch), in float32 and
float64, values and gradients, every reduction; left-out positions are never read and get exactly
zero gradient; disagreeing or malformed masks and lengths fail with pinned messages."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import specchain as sc
from specchain.losses import CrossEntropyLoss, MSELoss
from specchain.modules import Linear, Tanh
from specchain.padded import Padded
from tests.helpers import assert_close, load_torch, torch_from

DTYPES = [np.float64, np.float32]
LENGTHS = np.array([5, 2, 4])  # T = 5, B = 3
IGNORE = -100


def lengths_mask(lengths: np.ndarray, steps: int) -> np.ndarray:
    """bool ``[T, B]``: step t of example b is real."""
    return np.arange(steps)[:, None] < lengths[None, :]


def padded_problem(
    rng: np.random.Generator, dtype: type, classes: int = 4
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Logits ``[5, 3, C]``, targets ``[5, 3]`` with out-of-range garbage on the padding, and
    the bool mask of ``LENGTHS``."""
    logits = (3 * rng.standard_normal((5, 3, classes))).astype(dtype)
    keep = lengths_mask(LENGTHS, 5)
    target = np.where(keep, rng.integers(0, classes, (5, 3)), 999)  # 999: never range-checked
    return logits, target, keep


def torch_ce(
    logits: np.ndarray, target: np.ndarray, keep: np.ndarray, reduction: str
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """torch's ``nn.CrossEntropyLoss(ignore_index=...)`` with the left-out targets ignored."""
    classes = logits.shape[-1]
    lt = torch_from(logits, requires_grad=True)
    ignored = torch_from(np.where(keep, target, IGNORE).astype(np.int64))
    value = torch.nn.CrossEntropyLoss(ignore_index=IGNORE, reduction=reduction)(
        lt.reshape(-1, classes), ignored.reshape(-1)
    )
    if reduction == "none":
        return value.reshape(target.shape), None
    value.backward()
    return value, lt.grad


def torch_masked_mse(
    y: np.ndarray, target: np.ndarray, keep: np.ndarray, reduction: str
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(loss * mask).sum() / mask.sum()`` in torch, the mask expanded over the features."""
    yt = torch_from(y, requires_grad=True)
    m = torch_from(np.broadcast_to(keep, y.shape) if keep.shape == y.shape else keep[..., None])
    m = m.expand_as(yt).to(yt.dtype)
    per_item = (yt - torch_from(np.nan_to_num(target))) ** 2 * m
    if reduction == "none":
        return per_item, None
    value = per_item.sum() / m.sum() if reduction == "mean" else per_item.sum()
    value.backward()
    return value, yt.grad


# --- cross_entropy ------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("how", ["mask", "lengths", "padded"])
def test_cross_entropy_skips_padding_like_torch_ignore_index(
    how: str, dtype: type, reduction: str, rng: np.random.Generator
) -> None:
    logits, target, keep = padded_problem(rng, dtype)
    loss = CrossEntropyLoss(reduction=reduction)
    y = Padded(logits, LENGTHS) if how == "padded" else logits
    kwargs = {"mask": {"mask": keep}, "lengths": {"lengths": LENGTHS}, "padded": {}}[how]
    value, grad = loss.value_and_grad(y, target, **kwargs)
    ref_value, ref_grad = torch_ce(logits, target, keep, reduction)
    assert type(grad) is np.ndarray and grad.shape == logits.shape and grad.dtype == dtype
    assert_close(np.asarray(value, dtype=dtype), ref_value, "value")
    assert_close(loss(y, target, **kwargs), ref_value, "call value")
    assert_close(grad, ref_grad, "gradient")
    assert np.all(grad[~keep] == 0.0)  # exactly zero on the padding


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_none_gives_zeros_on_the_padding(
    dtype: type, rng: np.random.Generator
) -> None:
    logits, target, keep = padded_problem(rng, dtype)
    per_item = CrossEntropyLoss(reduction="none")(Padded(logits, LENGTHS), target)
    ref, _ = torch_ce(logits, target, keep, "none")
    assert_close(per_item, ref, "per item")
    assert np.all(per_item[~keep] == 0.0)


def test_mask_and_ignore_index_both_leave_positions_out(rng: np.random.Generator) -> None:
    logits, target, keep = padded_problem(rng, np.float64)
    target[0, 0] = 3
    loss = CrossEntropyLoss(ignore_index=3)
    value, grad = loss.value_and_grad(logits, target, mask=keep)
    both = keep & (target != 3)
    ref_value, ref_grad = torch_ce(logits, target, both, "mean")
    assert_close(np.float64(value), ref_value, "value")
    assert_close(grad, ref_grad, "gradient")


def test_batch_first_lengths_and_time_axis_keywords(rng: np.random.Generator) -> None:
    logits, target, keep = padded_problem(rng, np.float64)
    expected = sc.losses.cross_entropy(logits, target, mask=keep)
    first = (logits.transpose(1, 0, 2), target.T)
    got = sc.losses.cross_entropy(*first, lengths=LENGTHS, time_axis=1, batch_axis=0)
    padded = Padded(first[0], LENGTHS, time_axis=1, batch_axis=0)
    assert got == pytest.approx(expected, rel=1e-12)
    assert sc.losses.cross_entropy(padded, first[1]) == pytest.approx(expected, rel=1e-12)


def test_unbatched_sequence_takes_one_length(rng: np.random.Generator) -> None:
    logits, target = rng.standard_normal((5, 4)), rng.integers(0, 4, 5)
    value = sc.losses.cross_entropy(logits, target, lengths=[3], batch_axis=None)
    assert value == pytest.approx(sc.losses.cross_entropy(logits[:3], target[:3]), rel=1e-12)


def test_everything_padded_is_nan_like_torch(rng: np.random.Generator) -> None:
    logits, target, _ = padded_problem(rng, np.float64)
    nothing = np.zeros((5, 3), bool)
    value, grad = sc.losses.cross_entropy.value_and_grad(logits, target, mask=nothing)
    ref_value, _ = torch_ce(logits, target, nothing, "mean")
    assert np.isnan(value) and torch.isnan(ref_value)
    assert np.all(grad == 0.0)


# --- mse ----------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("how", ["mask", "feature mask", "lengths", "padded"])
def test_mse_skips_padding_like_a_masked_torch_loss(
    how: str, dtype: type, reduction: str, rng: np.random.Generator
) -> None:
    y = rng.standard_normal((5, 3, 2)).astype(dtype)
    keep = lengths_mask(LENGTHS, 5)
    target = np.where(keep[..., None], rng.standard_normal((5, 3, 2)), np.nan).astype(dtype)
    full = np.broadcast_to(keep[..., None], y.shape).copy()
    kwargs = {
        "mask": {"mask": full},
        "feature mask": {"mask": keep},
        "lengths": {"lengths": LENGTHS},
        "padded": {},
    }[how]
    yy = Padded(y, LENGTHS) if how == "padded" else y
    loss = MSELoss(reduction=reduction)
    ref_value, ref_grad = torch_masked_mse(y, target, keep, reduction)
    with np.errstate(all="raise"):  # the NaN targets on the padding are never read
        value = loss(yy, target, **kwargs)
    assert_close(value, ref_value, "value")
    if reduction == "none":
        assert np.all(value[~full] == 0.0)
        return
    grad = loss.value_and_grad(yy, target, **kwargs)[1]
    assert_close(grad, ref_grad, "gradient")
    assert np.all(grad[~full] == 0.0)


def test_mse_mean_counts_the_kept_elements_with_their_features() -> None:
    y, target = np.ones((2, 1, 3)), np.zeros((2, 1, 3))
    assert sc.losses.mse(y, target, lengths=[1]) == 1.0  # 3 elements of loss 1, divided by 3
    assert MSELoss(reduction="sum")(y, target, lengths=[1]) == 3.0


# --- through a chain ----------------------------------------------------------------------


def test_chain_called_with_lengths_trains_only_on_real_steps(rng: np.random.Generator) -> None:
    """``value_and_grad((x, lengths), ...)``: the chain's output is Padded and the loss skips
    its padding, so the parameter gradients are torch's with a masked loss, and whatever the
    padding holds changes nothing."""
    model = (Linear(2, 6) >> Tanh() >> Linear(6, 4)).to(np.float64)
    x = rng.standard_normal((5, 3, 2))
    _, target, keep = padded_problem(rng, np.float64)
    assert isinstance(model((x, LENGTHS)), Padded)
    value, grads = model.value_and_grad((x, LENGTHS), target, loss=sc.losses.cross_entropy)
    other_padding = np.where(keep[..., None], x, 1e3)
    value2, grads2 = model.value_and_grad(
        (other_padding, LENGTHS), target, loss=sc.losses.cross_entropy
    )
    assert value2 == value and all(np.array_equal(grads[k], grads2[k]) for k in grads)

    net = torch.nn.Sequential(torch.nn.Linear(2, 6), torch.nn.Tanh(), torch.nn.Linear(6, 4))
    net = net.double()
    load_torch(net[0], model.named_parameters(), "linear.")
    load_torch(net[2], model.named_parameters(), "linear_1.")
    ignored = torch_from(np.where(keep, target, IGNORE).astype(np.int64))
    ref = torch.nn.CrossEntropyLoss(ignore_index=IGNORE)(
        net(torch_from(x)).reshape(-1, 4), ignored.reshape(-1)
    )
    ref.backward()
    assert_close(np.float64(value), ref, "loss")
    assert_close(grads["linear.weight"], net[0].weight.grad, "first weight")
    assert_close(grads["linear_1.bias"], net[2].bias.grad, "last bias")


# --- refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            {"mask": np.ones((5, 3), int)},
            TypeError,
            r"^cross_entropy\.mask must be a bool numpy array \(True where a position counts\), "
            r"got int64 array; pass np\.asarray\(mask, dtype=bool\)",
        ),
        (
            {"mask": [[True] * 3] * 5},
            TypeError,
            r"cross_entropy\.mask must be a bool numpy array .* got list",
        ),
        (
            {"mask": np.ones((5, 3, 4), bool)},
            sc.ShapeError,
            r"^cross_entropy: mask of shape \[5, 3, 4\] does not fit input \[5, 3, 4\]; "
            r"expected \[5, 3\] \(the targets' shape, logits\.shape\[:-1\]\)$",
        ),
        (
            {"lengths": [5, 2]},
            sc.ShapeError,
            r"^cross_entropy: lengths has 2 entries for a batch of 3 \(data shape \[5, 3, 4\]\); "
            r"give one length per example$",
        ),
        (
            {"lengths": [5, 0, 4]},
            sc.ShapeError,
            r"^cross_entropy: lengths\[1\] = 0 is outside 1\.\.5 \(T = 5",
        ),
        (
            {"lengths": [5, 6, 4]},
            sc.ShapeError,
            r"lengths\[1\] = 6 is outside 1\.\.5",
        ),
        (
            {"lengths": [5.0, 2.0, 4.0]},
            TypeError,
            r"^lengths must be integers, got dtype float64; pass them as np\.asarray",
        ),
        (
            {"lengths": LENGTHS, "time_axis": -1},
            sc.SpecError,
            r"^cross_entropy\.time_axis must be an int >= 0, got -1",
        ),
        (
            {"lengths": [4, 4, 4, 4], "time_axis": 1, "batch_axis": 2},
            sc.ShapeError,
            r"^cross_entropy: the lengths run along axes \[1, 2\] of input \[5, 3, 4\], but its "
            r"positions are \[5, 3\] \(the last axis holds the classes\)",
        ),
        (
            {"lengths": LENGTHS, "mask": np.ones((5, 3), bool)},
            sc.SpecError,
            r"^cross_entropy: mask disagrees with the lengths \[5, 2, 4\] at position \[2, 1\] "
            r"\(mask True, lengths say False\); give the lengths or the mask, not both$",
        ),
    ],
    ids=[
        "int mask",
        "list mask",
        "mask of the logits' shape",
        "too few lengths",
        "zero length",
        "length past T",
        "float lengths",
        "negative time axis",
        "lengths on the class axis",
        "mask against lengths",
    ],
)
def test_bad_masks_and_lengths_are_refused(
    kwargs: dict[str, object], error: type[Exception], match: str, rng: np.random.Generator
) -> None:
    logits, target, _ = padded_problem(rng, np.float64)
    with pytest.raises(error, match=match):
        sc.losses.cross_entropy(logits, target, **kwargs)  # type: ignore[arg-type]


def test_mse_mask_shape_message_offers_both_forms() -> None:
    with pytest.raises(
        sc.ShapeError,
        match=r"^mse: mask of shape \[3\] does not fit input \[5, 3, 2\]; expected \[5, 3, 2\] "
        r"or \[5, 3\] \(the input's shape, or without the feature axis\)$",
    ):
        sc.losses.mse(np.zeros((5, 3, 2)), np.zeros((5, 3, 2)), mask=np.ones(3, bool))


def test_padded_y_with_lengths_or_mask_must_agree(rng: np.random.Generator) -> None:
    logits, target, keep = padded_problem(rng, np.float64)
    y = Padded(logits, LENGTHS)
    expected = sc.losses.cross_entropy(y, target)
    assert sc.losses.cross_entropy(y, target, lengths=LENGTHS, mask=keep) == expected
    with pytest.raises(
        sc.SpecError,
        match=r"^cross_entropy: lengths \[5, 5, 5\] disagree with the lengths \[5, 2, 4\] of the "
        r"Padded input; a Padded input carries its lengths, so pass lengths= only with a plain "
        r"array$",
    ):
        sc.losses.cross_entropy(y, target, lengths=[5, 5, 5])
    with pytest.raises(sc.SpecError, match=r"mask disagrees with the lengths \[5, 2, 4\]"):
        sc.losses.mse(Padded(logits, LENGTHS), logits, mask=np.ones((5, 3), bool))


def test_padded_y_whose_lengths_do_not_fit_is_refused(rng: np.random.Generator) -> None:
    logits, target, _ = padded_problem(rng, np.float64)
    with pytest.raises(sc.ShapeError, match=r"^cross_entropy: lengths\[0\] = 7 is outside 1\.\.5"):
        sc.losses.cross_entropy(Padded(logits, [7, 2, 4]), target)


def test_lengths_on_an_input_without_that_axis_are_refused() -> None:
    with pytest.raises(
        sc.ShapeError,
        match=r"^mse: data of shape \[5\] has no batch axis 1; for one unbatched sequence, "
        r"give batch_axis=None and one length$",
    ):
        sc.losses.mse(np.zeros(5), np.zeros(5), lengths=[5])
    sc.losses.mse(np.zeros(5), np.zeros(5), lengths=[5], batch_axis=None)
    with pytest.raises(sc.ShapeError, match=r"or for one unbatched sequence pass batch_axis=None"):
        sc.losses.cross_entropy(np.zeros((5, 3)), np.zeros(5, int), lengths=[3])
