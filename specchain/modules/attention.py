"""``AttentionLSTM``: an attention encoder/decoder over the parameters of TorchLean's
``AttentionLSTMModel``, as one spec, forward and backward.

TorchLean defines that record only (``encoder_lstm`` I -> H, ``decoder_lstm`` I + H -> H,
``attention_weights`` 2H -> 1, ``output_layer`` H -> O) and no forward pass: its comment leaves
"additive, dot-product, or domain-specific attention semantics" to the forward. The equations
below are this library's choice, not TorchLean's definition.

Input ``(source [S, B, I], decoder_inputs [T, B, I])`` (teacher forcing: the decoder reads the
given inputs, not its own predictions); output ``[T, B, O]``. With ``e_j`` the encoder outputs and
``(h_{-1}, c_{-1})`` the encoder's final state::

    e, (h_{-1}, c_{-1}) = encoder(source)                            encoder: LSTM I -> H
    score_{t,j} = score(h_{t-1}, e_j)                                 see below
    alpha_t     = softmax_j(score_t)                                  over the S source positions
    ctx_t       = sum_j alpha_{t,j} e_j                               [B, H]
    h_t, c_t    = decoder([x_t; ctx_t], (h_{t-1}, c_{t-1}))           LSTMCell (I + H) -> H
    y_t         = output(h_t)                                         Linear H -> O

``score=`` picks the score (``specchain.modules.attention_scores`` has the code)::

    "concat"    score(s, e_j) = w^T [s; e_j] + b          attention_weights: Linear 2H -> 1
    "dot"       score(s, e_j) = s . e_j                    no parameters (Luong et al. 2015)
    "general"   score(s, e_j) = s^T W_a e_j                attention_weights: Linear H -> H, no
                                                           bias, on e_j (Luong et al. 2015)
    "additive"  score(s, e_j) = v^T tanh(W [s; e_j] + b)   attention_weights: Linear 2H -> H,
                                                           attention_v: Linear H -> 1, no bias
                                                           (Bahdanau et al. 2015)

Luong, Pham & Manning 2015, "Effective Approaches to Attention-based Neural Machine Translation";
Bahdanau, Cho & Bengio 2015, "Neural Machine Translation by Jointly Learning to Align and
Translate". The default ``"concat"`` is TorchLean's record (one ``attention_weights`` layer
2H -> 1) with no further parameters: it is linear, so the decoder-state half of
``attention_weights`` adds the same amount to every source position and cancels in the softmax.
Those weights get an exactly zero gradient; the other scores depend on ``s``.

Variable lengths (``takes_lengths``): either input may be a time-major ``Padded`` (a chain called
with ``((source, source_lengths), (decoder_inputs, target_lengths))``, or one of them plain). With
source lengths the encoder runs each sequence over its own steps only (``h_{-1}, c_{-1}`` are its
state at its last step, as torch's packed LSTM gives) and the softmax runs over each example's
valid positions only: the weights ``alpha`` of the others are exactly zero. With decoder lengths
the output is ``Padded(y, target_lengths)``, ``y`` exactly zero at and past each length, and the
cotangent there is ignored. Each example of a padded batch gets what it gets alone, and no
gradient comes from or reaches padding (padding holding NaN included).

Parameters are those of the parts, under ``encoder.``, ``decoder.``, ``attention_weights.``
(``attention_v.`` too for the additive score; neither for dot) and ``output.``
(``encoder.weight_ih_l0``, ``decoder.weight_ih``, ...), matching a PyTorch module with
submodules ``nn.LSTM``, ``nn.LSTMCell`` and ``nn.Linear``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import attrs
import numpy as np

from specchain import padded
from specchain.exporters import pytorch
from specchain.modules.attention_scores import (
    ScoreSaved,
    check_score,
    score_backward,
    score_forward,
    score_parts,
)
from specchain.modules.linear import Linear
from specchain.modules.recurrent import LSTM, LSTMCell
from specchain.numerics import softmax
from specchain.padded import Padded
from specchain.params import ParamDecl
from specchain.spec import Context, NNModuleSpec, Params, positive_int
from specchain.types import BATCH, TIME, DimEnv, ShapeError, TensorType, TupleType, Type

if TYPE_CHECKING:
    from specchain.exporters.graphviz.flow import DataFlow

NAMES = ("source", "decoder_inputs")


@attrs.define(eq=False)
class AttentionLSTM(NNModuleSpec, family="attention"):
    """Encoder LSTM, attention over the encoder outputs, LSTMCell decoder, output Linear.

    Args:
        input_size: size I of the source and decoder input features.
        hidden_size: size H of the encoder and decoder states.
        output_size: size O of each output step.
        score: ``"concat"`` (default), ``"dot"``, ``"general"`` or ``"additive"`` (the module
            docstring has the equations).

    Shapes: ``(source [S, B, I], decoder_inputs [T, B, I])`` -> ``[T, B, O]``.
    """

    input_size: int = attrs.field(validator=positive_int)
    hidden_size: int = attrs.field(validator=positive_int)
    output_size: int = attrs.field(validator=positive_int)
    score: str = attrs.field(default="concat", kw_only=True, validator=check_score)
    parts: dict[str, NNModuleSpec] = attrs.field(init=False, repr=False)

    takes_lengths: ClassVar[bool] = True  # forward reads Padded source and decoder inputs

    def __attrs_post_init__(self) -> None:
        i, h, o = self.input_size, self.hidden_size, self.output_size
        self.parts = {  # whose math this spec runs: hyper-parameters only, weights live in params
            "encoder": LSTM(i, h, return_state=True, name="encoder", rng=0),
            "decoder": LSTMCell(i + h, h, name="decoder", rng=0),
            **score_parts(self.score, h),
            "output": Linear(h, o, name="output", rng=0),
        }
        for part in self.parts.values():
            part.params = {}
        super().__attrs_post_init__()

    def declare_params(self) -> dict[str, ParamDecl]:
        decls = {}
        for part, spec in self.parts.items():
            for name, decl in spec.declare_params().items():
                decls[f"{part}.{name}"] = decl
        return decls

    def describe(self) -> str:
        score = "" if self.score == "concat" else f" ({self.score} score)"
        return f"{self.input_size} -> {self.hidden_size} -> {self.output_size}, attention{score}"

    def components(self) -> Any:
        """The parts side by side, each on its own input (a chain of the parameter-holding
        specs; diagrams draw ``data_flow()``, which connects them)."""
        from specchain.chain import parallel

        return parallel(*self.parts.values())

    def data_flow(self) -> DataFlow:
        """How data moves between the parts, for expanded diagrams: source -> encoder ->
        attention -> decoder -> output, the encoder's final state starting the decoder, and
        the decoder's state carried to the next step (dashed) and read by the attention."""
        from specchain.exporters.graphviz.flow import DataFlow, Link, Step
        from specchain.graph import INPUT, OUTPUT

        i, h = self.input_size, self.hidden_size
        parts = self.parts
        scorers = [k for k in parts if k.startswith("attention")]
        scored = ", ".join(f"{k}: {parts[k].kind}({parts[k].describe()})" for k in scorers)
        step = (
            Step(
                "encoder",
                _kind(parts["encoder"]),
                params=self._count("encoder"),
                spec=parts["encoder"],
            ),
            Step(
                "attention",
                f"{self.score} score, softmax over S",
                note=scored or "no parameters",
                params=sum(self._count(k) for k in scorers),
            ),
            Step(
                "decoder",
                _kind(parts["decoder"]),
                "one step per t",
                self._count("decoder"),
                parts["decoder"],
            ),
            Step(
                "output", _kind(parts["output"]), params=self._count("output"), spec=parts["output"]
            ),
        )
        links = (
            Link(INPUT, "encoder", "source", f"[S, B, {i}]"),
            Link("encoder", "attention", "e", f"[S, B, {h}]"),
            Link("encoder", "decoder", "(h, c) initial", f"[B, {h}]"),
            Link(INPUT, "decoder", "decoder_inputs x_t", f"[B, {i}]"),
            Link("attention", "decoder", "ctx_t", f"[B, {h}]"),
            Link("decoder", "decoder", "(h_t, c_t)", f"[B, {h}]", loop=True),
            Link("decoder", "attention", "h_t, at t + 1", f"[B, {h}]", loop=True),
            Link("decoder", "output", "h", f"[T, B, {h}]"),
            Link("output", OUTPUT),
        )
        return DataFlow(step, links)

    def _count(self, part: str) -> int:
        """The number of parameters under ``part.``."""
        return sum(int(p.size) for k, p in self.params.items() if k.startswith(f"{part}."))

    @property
    def in_type(self) -> Type:
        return TupleType(
            (TensorType(("S", "B", self.input_size)), TensorType(("T", "B", self.input_size))),
            ("source", "decoder_inputs"),
        )

    def infer(self, in_type: Type, dims: DimEnv) -> Type:
        if not isinstance(in_type, TupleType) or len(in_type.items) != 2:
            raise ShapeError(f"AttentionLSTM takes (source, decoder_inputs), got {in_type}")
        source, target = (
            self._sequence(t, what, dims) for t, what in zip(in_type.items, NAMES, strict=True)
        )
        if source.dims[0] == 0:
            raise ShapeError("AttentionLSTM needs at least one source step, got S = 0")
        batch = dims.equal(target.dims[1], source.dims[1], "batch")
        return TensorType((target.dims[0], batch, self.output_size))

    def _sequence(self, t: Type, what: str, dims: DimEnv) -> TensorType:
        if not isinstance(t, TensorType) or t.dtype != "float" or t.rank != 3:
            raise ShapeError(f"{what} must be a float [len, B, {self.input_size}], got {t}")
        dims.equal(t.dims[2], self.input_size, f"{what} feature size")
        symbol = "S" if what == "source" else "T"
        dims.expect_role(t.dims[0], TIME, symbol, f"{what} dim 0")
        dims.expect_role(t.dims[1], BATCH, "B", f"{what} dim 1")
        return t

    # --- forward / backward -------------------------------------------------------------------

    def forward(self, params: Params, x: Any, ctx: Context) -> tuple[Any, Saved]:
        """``x = (source, decoder_inputs)``, each a ``[len, B, I]`` array or a time-major
        ``Padded``. Output ``[T, B, O]``, or ``Padded(y, decoder lengths)`` with ``y`` exactly
        zero past each length when the decoder inputs carry lengths."""
        source, target = (_time_major(value, what) for value, what in zip(x, NAMES, strict=True))
        source_data, target_data = padded.strip(source), padded.strip(target)
        if source_data.shape[0] == 0:
            raise ShapeError("AttentionLSTM needs at least one source step, got S = 0")
        if target_data.shape[1] != source_data.shape[1]:
            raise ShapeError(
                f"batch: source has {source_data.shape[1]}, decoder_inputs {target_data.shape[1]}"
            )
        source_valid, target_valid = _valid_steps(source), _valid_steps(target)
        if target_valid is not None:  # padding never reaches a weight, even when it holds NaN
            target_data = np.where(target_valid[..., None], target_data, 0)
        parts, sub = self.parts, self._split_params(params)
        (encoded, (h, c)), enc_saved = parts["encoder"].forward(sub["encoder"], source, ctx)
        enc_out = padded.strip(encoded)  # zero past each source length
        h, c = h[0], c[0]  # each example's state at its own last source step
        steps = []
        hs = np.empty((target_data.shape[0], *h.shape), dtype=h.dtype)
        for t in range(target_data.shape[0]):
            scores, score_saved = score_forward(self.score, parts, sub, h, enc_out, ctx)
            alpha = masked_softmax(scores, source_valid)  # [S, B]
            context = np.einsum("sb,sbh->bh", alpha, enc_out)
            step_in = np.concatenate([target_data[t], context], axis=1)
            (h, c), cell_saved = parts["decoder"].forward(sub["decoder"], (step_in, (h, c)), ctx)
            hs[t] = h
            steps.append(DecoderStep(score_saved, alpha, cell_saved))
        y, out_saved = parts["output"].forward(sub["output"], hs, ctx)
        saved = Saved(enc_saved, enc_out, tuple(steps), out_saved, target_valid)
        if target_valid is None:
            return y, saved
        return Padded(np.where(target_valid[..., None], y, 0), target.lengths), saved

    def backward(self, params: Params, saved: Saved, dy: np.ndarray) -> tuple[Any, Params]:
        """``dy [T, B, O]`` (plain; ignored past each decoder length) -> ``((d_source,
        d_decoder_inputs), grads)``, both exactly zero on padding."""
        parts, sub = self.parts, self._split_params(params)
        if saved.target_valid is not None:
            dy = np.where(saved.target_valid[..., None], dy, 0)
        d_hs, grads = parts["output"].backward(sub["output"], saved.out_saved, dy)
        totals = {f"output.{k}": v for k, v in grads.items()}
        enc_out = saved.enc_out
        d_enc = np.zeros_like(enc_out)
        d_target = np.empty((len(saved.steps), *d_hs.shape[1:-1], self.input_size), dy.dtype)
        dh = np.zeros_like(d_hs[0])
        dc = np.zeros_like(dh)
        for t in range(len(saved.steps) - 1, -1, -1):
            step = saved.steps[t]
            alpha = step.alpha
            (d_in, (dh, dc)), g = parts["decoder"].backward(
                sub["decoder"], step.cell_saved, (d_hs[t] + dh, dc)
            )
            _accumulate(totals, "decoder", g)
            d_target[t], d_context = d_in[:, : self.input_size], d_in[:, self.input_size :]
            d_alpha = np.einsum("bh,sbh->sb", d_context, enc_out)
            d_enc += alpha[..., None] * d_context
            # masked positions have alpha = 0, so their score gradient is exactly zero too
            d_scores = alpha * (d_alpha - (alpha * d_alpha).sum(axis=0, keepdims=True))
            d_s, d_keys, score_grads = score_backward(
                self.score, parts, sub, step.score_saved, d_scores
            )
            for part, g in score_grads.items():
                _accumulate(totals, part, g)
            dh = dh + d_s
            d_enc += d_keys
        d_state = (dh[None], dc[None])
        d_source, g = parts["encoder"].backward(sub["encoder"], saved.enc_saved, (d_enc, d_state))
        _accumulate(totals, "encoder", g)
        return (d_source, d_target), totals

    def _split_params(self, params: Params) -> dict[str, Params]:
        """``params`` by part: ``{"encoder": {"weight_ih_l0": ...}, ...}``."""
        sub: dict[str, Params] = {part: {} for part in self.parts}
        for name, value in params.items():
            part, local = name.split(".", 1)
            sub[part][local] = value
        return sub


@attrs.frozen(eq=False)
class DecoderStep:
    """What one decoder step keeps: the score's saved tensors, the attention weights
    ``alpha [S, B]`` (exactly zero past each source length) and the cell's saved tensors."""

    score_saved: ScoreSaved
    alpha: np.ndarray
    cell_saved: Any


@attrs.frozen(eq=False)
class Saved:
    """What ``AttentionLSTM.forward`` keeps for backward: the encoder's saved tensors, its
    outputs ``[S, B, H]``, every decoder step, the output layer's saved tensors, and the
    decoder's valid steps ``[T, B]`` (None without decoder lengths)."""

    enc_saved: Any
    enc_out: np.ndarray
    steps: tuple[DecoderStep, ...]
    out_saved: Any
    target_valid: np.ndarray | None


# --- variable lengths --------------------------------------------------------------------------


def _time_major(value: Any, what: str) -> Any:
    """``value`` itself; a ``Padded`` one is checked to be time-major ``[len, B, I]`` (the
    layout of this spec's types) with lengths that fit its data."""
    if isinstance(value, Padded):
        if (value.time_axis, value.batch_axis) != (0, 1):
            raise ShapeError(
                f"AttentionLSTM reads time-major {what} [len, B, I], but its Padded value says "
                f"time_axis={value.time_axis}, batch_axis={value.batch_axis}; build it as "
                f"Padded({what}, lengths) (time_axis=0, batch_axis=1)"
            )
        value.check(f"AttentionLSTM {what}")
    return value


def _valid_steps(value: Any) -> np.ndarray | None:
    """``[len, B]`` bool, True on the real steps of a ``Padded`` value; None for a plain one."""
    if not isinstance(value, Padded):
        return None
    return np.arange(value.steps)[:, None] < value.lengths


def masked_softmax(scores: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    """``softmax`` of ``scores [S, B]`` over the source positions (axis 0) that are ``valid``
    (all when None); the weights of the others are exactly zero. Every example has at least one
    valid position (lengths are ``1..S``), so the maximum that shifts the softmax is finite."""
    if valid is not None:
        scores = np.where(valid, scores, -np.inf)
    return softmax(scores, axis=0)


def _kind(spec: NNModuleSpec) -> str:
    """``LSTM(8 -> 16)``: a part's kind and hyper-parameters, as a diagram box shows them."""
    details = spec.describe()
    return f"{spec.kind}({details})" if details else spec.kind


def _accumulate(totals: Params, part: str, grads: Params) -> None:
    for k, v in grads.items():
        key = f"{part}.{k}"
        totals[key] = totals[key] + v if key in totals else v


# --- PyTorch export ----------------------------------------------------------------------------


@pytorch.emitter(AttentionLSTM)
def _emit_attention_lstm(spec: AttentionLSTM, in_type: Type) -> pytorch.Emitted:
    sizes = (spec.input_size, spec.hidden_size, spec.output_size)
    score = () if spec.score == "concat" else (spec.score,)  # concat: the text as before
    emitted = pytorch.helper("AttentionLSTM", *sizes, *score)
    return attrs.evolve(emitted, lengths="argument")  # (source_lengths, decoder_lengths)
