"""The kernel of the LSTM variants: one layer, one direction, forward and BPTT.

Equations (``sigma`` the logistic sigmoid, ``*`` elementwise; ``p_i, p_f, p_o [H]`` the diagonal
peepholes; ``a_{t-1}`` the previous step's sigmoid gate activations, 0 at the first step)::

    z_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh  (+ W_gg a_{t-1}, full gate recurrence)
    i = sigma(z_i + p_i * c_{t-1})     i = 1 without an input gate
    f = sigma(z_f + p_f * c_{t-1})     f = 1 - i coupled, f = 1 without a forget gate
    g = tanh(z_g)                      g = z_g without the input activation
    c_t = f * c_{t-1} + i * g
    o = sigma(z_o + p_o * c_t)         o = 1 without an output gate
    h_t = o * tanh(c_t)                h_t = o * c_t without the output activation

The gates that exist have rows in ``W_ih [G*H, I]``, ``W_hh [G*H, H]`` and the biases, in
PyTorch's order i, f, g, o; ``W_gg [S*H, S*H]`` maps the S sigmoid gates' activations
(i, f, o that exist, in that order) to their pre-activations.

Lengths work as in ``lstm_kernel``: the batch is sorted longest first and at step ``t`` only
the examples still running compute; outputs past each length are 0, the final state is each
example's own last, nothing flows from padding.

Written for clarity over speed (the standard LSTM keeps its own kernel, ``lstm_kernel``): one
GEMM for the input projection, per-step gate math, weight gradients after the loop.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from specchain.modules.lengths_kernel import Runs

GATES = ("i", "f", "g", "o")


@attrs.frozen
class Variant:
    """Which modifications of the standard LSTM apply (all False: the standard LSTM)."""

    peephole: bool = False
    coupled_gates: bool = False
    no_forget_gate: bool = False
    no_input_gate: bool = False
    no_output_gate: bool = False
    no_input_activation: bool = False
    no_output_activation: bool = False
    full_gate_recurrence: bool = False

    @property
    def standard(self) -> bool:
        return self == Variant()

    @property
    def gates(self) -> tuple[str, ...]:
        """The gates with weights, in row order: ``("i", "f", "g", "o")`` for the standard LSTM."""
        absent = {
            "i": self.no_input_gate,
            "f": self.no_forget_gate or self.coupled_gates,
            "g": False,
            "o": self.no_output_gate,
        }
        return tuple(gate for gate in GATES if not absent[gate])

    @property
    def sigmoid_gates(self) -> tuple[str, ...]:
        return tuple(gate for gate in self.gates if gate != "g")

    @property
    def peepholes(self) -> tuple[str, ...]:
        """The gates with a peephole (``weight_c<gate>``): every sigmoid gate, with ``peephole``."""
        return self.sigmoid_gates if self.peephole else ()


@attrs.frozen
class VariantWeights:
    """One direction of one layer: ``w_ih [G*H, I]``, ``w_hh [G*H, H]``, ``bias [G*H]`` (the sum
    ``b_ih + b_hh``, or None), ``peep`` (gate -> ``[H]``) and ``w_gg [S*H, S*H]`` (or None)."""

    w_ih: np.ndarray
    w_hh: np.ndarray
    bias: np.ndarray | None
    peep: dict[str, np.ndarray]
    w_gg: np.ndarray | None

    @property
    def hidden(self) -> int:
        return int(self.w_hh.shape[1])


@attrs.frozen
class VariantCache:
    """The sorted input and, per step, the gate activations (``[T, B, G*H]``), h and c
    (``[T + 1, B, H]``), ``tanh(c)`` (or ``c``) ``[T, B, H]`` and the previous sigmoid
    activations ``[T + 1, B, S*H]`` (full gate recurrence only)."""

    runs: Runs
    x: np.ndarray
    acts: np.ndarray
    hs: np.ndarray
    cs: np.ndarray
    squashed: np.ndarray
    prev: np.ndarray | None


@attrs.frozen
class VariantGrads:
    dx: np.ndarray  # [T, B, I]
    dh0: np.ndarray  # [B, H]
    dc0: np.ndarray  # [B, H]
    w_ih: np.ndarray
    w_hh: np.ndarray
    bias: np.ndarray | None  # the gradient of b_ih, equal to that of b_hh
    peep: dict[str, np.ndarray]
    w_gg: np.ndarray | None


def sigmoid(z: np.ndarray) -> np.ndarray:
    """``(1 + tanh(z / 2)) / 2``: never overflows."""
    return 0.5 + 0.5 * np.tanh(0.5 * z)


class _Columns:
    """Column slices of each gate in ``[*, G*H]`` and the sigmoid gates' columns in order."""

    def __init__(self, variant: Variant, hidden: int) -> None:
        self.of = {
            gate: slice(k * hidden, (k + 1) * hidden) for k, gate in enumerate(variant.gates)
        }
        ranges = [np.arange(self.of[g].start, self.of[g].stop) for g in variant.sigmoid_gates]
        self.sigmoid = np.concatenate(ranges) if ranges else np.zeros(0, np.intp)


def variant_forward(
    x: np.ndarray,
    h0: np.ndarray,
    c0: np.ndarray,
    w: VariantWeights,
    variant: Variant,
    lengths: np.ndarray | None = None,
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray], VariantCache]:
    """Run one direction over ``x [T, B, I]`` from ``h0, c0 [B, H]``, each example for its first
    ``lengths[b]`` steps. Returns ``y [T, B, H]``, ``(h_n, c_n)`` and the cache."""
    steps, batch, features = x.shape
    hidden, width = w.hidden, w.w_ih.shape[0]
    runs = Runs.of(lengths, steps, batch)
    x = runs.sorted_input(x)
    cols = _Columns(variant, hidden)
    pre = (x.reshape(steps * batch, features) @ w.w_ih.T).reshape(steps, batch, width)
    if w.bias is not None:
        pre += w.bias
    acts = np.zeros_like(pre)
    hs = np.zeros((steps + 1, batch, hidden), x.dtype)
    cs = np.zeros((steps + 1, batch, hidden), x.dtype)
    squashed = np.zeros((steps, batch, hidden), x.dtype)
    prev = None
    if w.w_gg is not None:
        prev = np.zeros((steps + 1, batch, len(cols.sigmoid)), x.dtype)
    hs[0], cs[0] = runs.sort(h0, 0), runs.sort(c0, 0)
    for t0, t1, n in runs.segments:
        for t in range(t0, t1):
            z = pre[t, :n] + hs[t, :n] @ w.w_hh.T
            if prev is not None and w.w_gg is not None:
                z[:, cols.sigmoid] += prev[t, :n] @ w.w_gg.T
            a, c_prev = acts[t, :n], cs[t, :n]
            for gate in ("i", "f"):
                if gate in cols.of:
                    zg = z[:, cols.of[gate]]
                    if gate in w.peep:
                        zg = zg + w.peep[gate] * c_prev
                    a[:, cols.of[gate]] = sigmoid(zg)
            g = z[:, cols.of["g"]]
            a[:, cols.of["g"]] = g if variant.no_input_activation else np.tanh(g)
            i, f, g = _input_side(a, cols, variant)
            c = cs[t + 1, :n]
            np.multiply(f, c_prev, out=c)
            c += i * g
            if "o" in cols.of:
                zo = z[:, cols.of["o"]]
                if "o" in w.peep:
                    zo = zo + w.peep["o"] * c
                a[:, cols.of["o"]] = sigmoid(zo)
            squashed[t, :n] = c if variant.no_output_activation else np.tanh(c)
            hs[t + 1, :n] = squashed[t, :n] * _gate(a, cols, "o")
            if prev is not None:
                prev[t + 1, :n] = a[:, cols.sigmoid]
    runs.zero_padding(hs[1:])
    final = (runs.last(hs[1:]), runs.last(cs[1:]))
    return runs.unsort(hs[1:], 1), final, VariantCache(runs, x, acts, hs, cs, squashed, prev)


def _gate(a: np.ndarray, cols: _Columns, gate: str) -> np.ndarray | float:
    """A gate's activations, or 1.0 when the variant has no such gate."""
    return a[:, cols.of[gate]] if gate in cols.of else 1.0


def _input_side(
    a: np.ndarray, cols: _Columns, variant: Variant
) -> tuple[np.ndarray | float, np.ndarray | float, np.ndarray]:
    """``(i, f, g)`` of one step, with the constants and the coupling of the variant."""
    i = _gate(a, cols, "i")
    f = 1.0 - i if variant.coupled_gates else _gate(a, cols, "f")
    return i, f, a[:, cols.of["g"]]


def variant_backward(
    w: VariantWeights,
    variant: Variant,
    cache: VariantCache,
    dy: np.ndarray,
    dh_n: np.ndarray,
    dc_n: np.ndarray,
) -> VariantGrads:
    """BPTT for ``variant_forward``: ``dy [T, B, H]`` (ignored on padding), ``dh_n, dc_n
    [B, H]`` on each example's final state. ``dx`` is exactly 0 on padding."""
    runs, acts, hs, cs = cache.runs, cache.acts, cache.hs, cache.cs
    steps, batch, width = acts.shape
    hidden = w.hidden
    cols = _Columns(variant, hidden)
    d_pre = np.zeros_like(acts)
    dh = np.array(runs.sort(dh_n, 0), dtype=acts.dtype, copy=True)
    dc = np.array(runs.sort(dc_n, 0), dtype=acts.dtype, copy=True)
    d_prev = np.zeros((batch, len(cols.sigmoid)), acts.dtype)
    d_peep = {gate: np.zeros(hidden, acts.dtype) for gate in w.peep}
    dy = runs.sort(dy, 1)
    for t0, t1, n in reversed(runs.segments):
        for t in range(t1 - 1, t0 - 1, -1):
            a, dz = acts[t, :n], d_pre[t, :n]
            c_prev, c, s = cs[t, :n], cs[t + 1, :n], cache.squashed[t, :n]
            d_act = np.zeros((n, width), acts.dtype)  # to each gate's activation
            if w.w_gg is not None:
                d_act[:, cols.sigmoid] = d_prev[:n]
            dh_t = dy[t, :n] + dh[:n]
            o = _gate(a, cols, "o")
            ds = dh_t * o
            dc_t = dc[:n] + (ds if variant.no_output_activation else ds * (1.0 - s * s))
            if "o" in cols.of:
                d_act[:, cols.of["o"]] += dh_t * s
                dz[:, cols.of["o"]] = _through_sigmoid(d_act, a, cols, "o")
                if "o" in w.peep:
                    dc_t += dz[:, cols.of["o"]] * w.peep["o"]
                    d_peep["o"] += (dz[:, cols.of["o"]] * c).sum(axis=0)
            i, f, g = _input_side(a, cols, variant)
            dg = dc_t * i
            dz[:, cols.of["g"]] = dg if variant.no_input_activation else dg * (1.0 - g * g)
            if "i" in cols.of:
                d_act[:, cols.of["i"]] += dc_t * g
                if variant.coupled_gates:  # f = 1 - i
                    d_act[:, cols.of["i"]] -= dc_t * c_prev
            if "f" in cols.of:
                d_act[:, cols.of["f"]] += dc_t * c_prev
            dc_prev = dc_t * f
            for gate in ("i", "f"):
                if gate in cols.of:
                    dz[:, cols.of[gate]] = _through_sigmoid(d_act, a, cols, gate)
                    if gate in w.peep:
                        dc_prev = dc_prev + dz[:, cols.of[gate]] * w.peep[gate]
                        d_peep[gate] += (dz[:, cols.of[gate]] * c_prev).sum(axis=0)
            dc[:n] = dc_prev
            dh[:n] = dz @ w.w_hh
            if w.w_gg is not None:
                d_prev[:n] = dz[:, cols.sigmoid] @ w.w_gg
    flat = d_pre.reshape(steps * batch, width)
    x = cache.x
    d_w_gg = None
    if cache.prev is not None:
        size = len(cols.sigmoid)
        d_sig = d_pre[:, :, cols.sigmoid].reshape(steps * batch, size)
        d_w_gg = d_sig.T @ cache.prev[:steps].reshape(steps * batch, size)
    return VariantGrads(
        dx=runs.unsort((flat @ w.w_ih).reshape(x.shape), 1),
        dh0=runs.unsort(dh, 0),
        dc0=runs.unsort(dc, 0),
        w_ih=flat.T @ x.reshape(steps * batch, x.shape[2]),
        w_hh=flat.T @ hs[:steps].reshape(steps * batch, hidden),
        bias=flat.sum(axis=0) if w.bias is not None else None,
        peep=d_peep,
        w_gg=d_w_gg,
    )


def _through_sigmoid(d_act: np.ndarray, a: np.ndarray, cols: _Columns, gate: str) -> Any:
    """A sigmoid gate's pre-activation gradient: ``d_act * a * (1 - a)``."""
    ag = a[:, cols.of[gate]]
    return d_act[:, cols.of[gate]] * ag * (1.0 - ag)
