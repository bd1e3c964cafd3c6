"""The attention scores of ``AttentionLSTM``: ``score(s, e_j)`` of the decoder state ``s [B, H]``
against every encoder output ``e_j`` (``e [S, B, H]``), forward and hand-written backward.

Each kind's parameters are ``Linear`` parts under one naming scheme (``attention_weights.*``, and
``attention_v.*`` for the additive score), matching ``nn.Linear`` submodules of the same names::

    concat     score(s, e_j) = w^T [s; e_j] + b           attention_weights: Linear 2H -> 1
    dot        score(s, e_j) = s . e_j                     no parameters
    general    score(s, e_j) = s^T W_a e_j                 attention_weights: Linear H -> H, no bias
    additive   score(s, e_j) = v^T tanh(W [s; e_j] + b)    attention_weights: Linear 2H -> H,
                                                           attention_v: Linear H -> 1, no bias

``concat`` is this library's original linear scorer (its ``s`` half cancels in the softmax);
``dot`` and ``general`` are Luong, Pham & Manning 2015, "Effective Approaches to Attention-based
Neural Machine Translation" (section 3.1); ``additive`` is Bahdanau, Cho & Bengio 2015, "Neural
Machine Translation by Jointly Learning to Align and Translate" (appendix A.1.2), with ``W`` acting
on the concatenation ``[s; e_j]`` (``W_a s + U_a e_j`` in the paper) and a bias.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from specchain.modules.linear import Linear
from specchain.spec import Context, NNModuleSpec, Params
from specchain.types import SpecError

SCORES = ("concat", "dot", "general", "additive")


def check_score(instance: Any, attribute: Any, value: Any) -> None:
    """attrs validator: ``value`` is one of ``SCORES``."""
    if value not in SCORES:
        choices = ", ".join(repr(s) for s in SCORES)
        raise SpecError(
            f"AttentionLSTM {attribute.name} must be one of {choices}, got {value!r}; "
            f"pass score='concat' (the default) or another of those"
        )


def score_parts(score: str, hidden: int) -> dict[str, NNModuleSpec]:
    """The ``Linear`` parts that hold the parameters of ``score`` for hidden size ``hidden``."""
    if score == "concat":
        return {"attention_weights": Linear(2 * hidden, 1, name="attention_weights", rng=0)}
    if score == "general":
        return {
            "attention_weights": Linear(hidden, hidden, bias=False, name="attention_weights", rng=0)
        }
    if score == "additive":
        return {
            "attention_weights": Linear(2 * hidden, hidden, name="attention_weights", rng=0),
            "attention_v": Linear(hidden, 1, bias=False, name="attention_v", rng=0),
        }
    return {}  # dot: no parameters


@attrs.frozen(eq=False)
class ScoreSaved:
    """What one scoring keeps for backward: the decoder state ``s [B, H]``, the encoder outputs
    ``e [S, B, H]``, ``keys`` (``W_a e [S, B, H]`` for general, ``tanh(W [s; e] + b)
    [S, B, H]`` for additive, None otherwise) and the saved tensors of each ``Linear`` part."""

    s: np.ndarray
    enc: np.ndarray
    keys: np.ndarray | None
    linear_saved: tuple[Any, ...]


def score_forward(
    score: str,
    parts: dict[str, NNModuleSpec],
    sub: dict[str, Params],
    s: np.ndarray,
    enc: np.ndarray,
    ctx: Context,
) -> tuple[np.ndarray, ScoreSaved]:
    """``s [B, H]``, ``enc [S, B, H]`` -> scores ``[S, B]`` (before the softmax) and what
    backward needs. ``sub`` holds each part's parameters by part name."""
    if score == "dot":
        return np.einsum("bh,sbh->sb", s, enc), ScoreSaved(s, enc, None, ())
    if score == "general":
        keys, saved = parts["attention_weights"].forward(sub["attention_weights"], enc, ctx)
        return np.einsum("bh,sbh->sb", s, keys), ScoreSaved(s, enc, keys, (saved,))
    pair = np.concatenate([np.broadcast_to(s, enc.shape), enc], axis=2)
    hidden, saved = parts["attention_weights"].forward(sub["attention_weights"], pair, ctx)
    if score == "concat":
        return hidden[..., 0], ScoreSaved(s, enc, None, (saved,))
    keys = np.tanh(hidden)
    out, v_saved = parts["attention_v"].forward(sub["attention_v"], keys, ctx)
    return out[..., 0], ScoreSaved(s, enc, keys, (saved, v_saved))


def score_backward(
    score: str,
    parts: dict[str, NNModuleSpec],
    sub: dict[str, Params],
    saved: ScoreSaved,
    d_scores: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, dict[str, Params]]:
    """``d_scores [S, B]`` -> ``(d_s [B, H], d_enc [S, B, H], grads by part name)``."""
    if score == "dot":
        d_s = np.einsum("sb,sbh->bh", d_scores, saved.enc)
        return d_s, d_scores[..., None] * saved.s, {}
    if score == "general":
        assert saved.keys is not None
        d_s = np.einsum("sb,sbh->bh", d_scores, saved.keys)
        d_keys = d_scores[..., None] * saved.s
        d_enc, g = parts["attention_weights"].backward(
            sub["attention_weights"], saved.linear_saved[0], d_keys
        )
        return d_s, d_enc, {"attention_weights": g}
    d_hidden = d_scores[..., None]
    v_grads: Params = {}
    if score == "additive":
        assert saved.keys is not None
        d_keys, v_grads = parts["attention_v"].backward(
            sub["attention_v"], saved.linear_saved[1], d_hidden
        )
        d_hidden = d_keys * (1 - saved.keys * saved.keys)  # tanh' = 1 - tanh^2
    d_pair, g = parts["attention_weights"].backward(
        sub["attention_weights"], saved.linear_saved[0], d_hidden
    )
    grads = {"attention_weights": g, **({"attention_v": v_grads} if v_grads else {})}
    hidden = saved.s.shape[-1]
    return d_pair[:, :, :hidden].sum(axis=0), d_pair[:, :, hidden:], grads
