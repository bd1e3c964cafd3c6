"""The LSTM kernel: one layer, one direction, forward and BPTT, written for BLAS.

Equations (PyTorch's, gate order i, f, g, o; ``P`` = projection size or ``H``)::

    z_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh                    [B, 4H]
    i, f, o = sigmoid(z_i), sigmoid(z_f), sigmoid(z_o);  g = tanh(z_g)
    c_t = f * c_{t-1} + i * g;    h_t = W_hr (o * tanh(c_t))   (W_hr = identity without projection)

Speed: the input projection of all timesteps is one GEMM; the recurrence works in preallocated
buffers with in-place gate math; backward stores the gate gradients of every step and turns them
into weight gradients with single GEMMs after the loop.

Lengths: with ``lengths`` (int ``[B]`` in ``1..T``, any order) each example runs its own first
``L_b`` steps, exactly as torch runs a packed sequence: the batch is sorted longest first and at
step ``t`` only the examples still running compute (``lengths_kernel.Runs``). Outputs past each
length are exactly 0, the final state is each example's state at its own last step, backward
ignores ``dy`` on padding, starts each example from its ``dh_n``/``dc_n`` at its last step and
gives exactly 0 for ``dx`` on padding (padding values, even NaN, never reach any gradient).

Stability: ``sigmoid(z) = (1 + tanh(z / 2)) / 2`` never overflows. The forward computes ``z / 2``
directly with weights whose i, f, o rows are halved (exact in binary floating point), so one
``tanh`` over the contiguous ``[B, 4H]`` block and one affine map give all four gates.
"""

from __future__ import annotations

import functools
from typing import Any

import attrs
import numpy as np

from specchain.modules.lengths_kernel import Runs


@attrs.frozen
class LayerWeights:
    """One direction of one layer: ``w_ih [4H, I]``, ``w_hh [4H, P]``, ``bias [4H]`` (the sum
    ``b_ih + b_hh``, or None) and ``w_hr [P, H]`` (or None)."""

    w_ih: np.ndarray
    w_hh: np.ndarray
    bias: np.ndarray | None
    w_hr: np.ndarray | None

    @property
    def hidden(self) -> int:
        return int(self.w_hh.shape[0]) // 4


@attrs.frozen
class LayerCache:
    """What backward needs: the input, gate activations, and every h, c and tanh(c), with the
    batch sorted as ``runs`` says (padding: zeros in ``x``, ``hs[1:]`` and ``h_full``, anything
    elsewhere)."""

    runs: Runs
    x: np.ndarray  # [T, B, I], contiguous
    gates: np.ndarray  # [T, B, 4H]: i, f, g, o after their nonlinearities
    hs: np.ndarray  # [T + 1, B, P]: h_0 .. h_T
    cs: np.ndarray  # [T + 1, B, H]: c_0 .. c_T
    tanh_c: np.ndarray  # [T, B, H]
    h_full: np.ndarray | None  # [T, B, H]: o * tanh(c) before the projection


@attrs.frozen
class LayerGrads:
    dx: np.ndarray  # [T, B, I]
    dh0: np.ndarray  # [B, P]
    dc0: np.ndarray  # [B, H]
    w_ih: np.ndarray
    w_hh: np.ndarray
    bias: np.ndarray | None  # the gradient of b_ih, equal to that of b_hh
    w_hr: np.ndarray | None


@functools.lru_cache(maxsize=64)
def _gate_affine(hidden: int, dtype: np.dtype[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Per-column ``(scale, shift)``: 1/2 for the sigmoid gates i, f, o and (1, 0) for g.
    Constants of ``(hidden, dtype)``, made once and read-only."""
    scale = np.full(4 * hidden, 0.5, dtype)
    shift = np.full(4 * hidden, 0.5, dtype)
    scale[2 * hidden : 3 * hidden] = 1.0
    shift[2 * hidden : 3 * hidden] = 0.0
    scale.flags.writeable = shift.flags.writeable = False
    return scale, shift


def layer_forward(
    x: np.ndarray,
    h0: np.ndarray,
    c0: np.ndarray,
    w: LayerWeights,
    lengths: np.ndarray | None = None,
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray], LayerCache]:
    """Run one direction over ``x [T, B, I]`` from ``h0 [B, P]``, ``c0 [B, H]``, each example
    for its first ``lengths[b]`` steps (all T without ``lengths``).

    Returns ``y [T, B, P]`` (zero past each length), ``(h_n [B, P], c_n [B, H])`` (each
    example's state at its last step) and the cache.
    """
    steps, batch, features = x.shape
    runs = Runs.of(lengths, steps, batch)
    x = runs.sorted_input(x)
    hidden, proj = w.hidden, w.w_hh.shape[1]
    scale, shift = _gate_affine(hidden, x.dtype)
    w_hh_t = np.multiply(w.w_hh.T, scale, order="C")  # [P, 4H], contiguous for the steps
    gates = np.matmul(x.reshape(steps * batch, features), (w.w_ih * scale[:, None]).T)
    gates = gates.reshape(steps, batch, 4 * hidden)
    if w.bias is not None:
        gates += w.bias * scale
    hs = np.empty((steps + 1, batch, proj), dtype=x.dtype)
    cs = np.empty((steps + 1, batch, hidden), dtype=x.dtype)
    tanh_c = np.empty((steps, batch, hidden), dtype=x.dtype)
    h_full = np.empty((steps, batch, hidden), dtype=x.dtype) if w.w_hr is not None else None
    w_hr_t = w.w_hr.T if w.w_hr is not None else None
    hs[0], cs[0] = runs.sort(h0, 0), runs.sort(c0, 0)
    recurrent = np.empty((batch, 4 * hidden), dtype=x.dtype)
    scratch = np.empty((batch, hidden), dtype=x.dtype)
    for t0, t1, n in runs.segments:
        _forward_steps(
            gates[t0:t1, :n],
            hs[t0 : t1 + 1, :n],
            cs[t0 : t1 + 1, :n],
            tanh_c[t0:t1, :n],
            None if h_full is None else h_full[t0:t1, :n],
            w_hh_t,
            w_hr_t,
            (scale, shift),
            (recurrent[:n], scratch[:n]),
        )
    runs.zero_padding(hs[1:])
    if h_full is not None:
        runs.zero_padding(h_full)
    final = (runs.last(hs[1:]), runs.last(cs[1:]))
    return runs.unsort(hs[1:], 1), final, LayerCache(runs, x, gates, hs, cs, tanh_c, h_full)


def _forward_steps(
    gates: np.ndarray,
    hs: np.ndarray,
    cs: np.ndarray,
    tanh_c: np.ndarray,
    h_full: np.ndarray | None,
    w_hh_t: np.ndarray,
    w_hr_t: np.ndarray | None,
    affine: tuple[np.ndarray, np.ndarray],
    work: tuple[np.ndarray, np.ndarray],
) -> None:
    """The recurrence over S steps of n rows, in place on views: ``gates [S, n, 4H]`` (``z / 2``
    for i, f, o and ``z`` for g, the input part; they become the activations), ``hs [S + 1, n, P]``
    and ``cs [S + 1, n, H]`` (entry 0 given), ``tanh_c``, ``h_full [S, n, H]``; ``work`` holds
    two scratch buffers ``[n, 4H]`` and ``[n, H]``."""
    scale, shift = affine
    recurrent, scratch = work
    hidden = tanh_c.shape[2]
    two_h, three_h = 2 * hidden, 3 * hidden
    for t in range(gates.shape[0]):
        z = gates[t]
        np.matmul(hs[t], w_hh_t, out=recurrent)
        z += recurrent
        np.tanh(z, out=z)
        z *= scale
        z += shift
        i, f, g, o = z[:, :hidden], z[:, hidden:two_h], z[:, two_h:three_h], z[:, three_h:]
        c = cs[t + 1]
        np.multiply(f, cs[t], out=c)
        np.multiply(i, g, out=scratch)
        c += scratch
        np.tanh(c, out=tanh_c[t])
        if h_full is None or w_hr_t is None:
            np.multiply(o, tanh_c[t], out=hs[t + 1])
        else:
            np.multiply(o, tanh_c[t], out=h_full[t])
            np.matmul(h_full[t], w_hr_t, out=hs[t + 1])


def layer_backward(
    w: LayerWeights, cache: LayerCache, dy: np.ndarray, dh_n: np.ndarray, dc_n: np.ndarray
) -> LayerGrads:
    """BPTT for ``layer_forward``: ``dy [T, B, P]`` on the outputs (ignored on padding),
    ``dh_n [B, P]`` and ``dc_n [B, H]`` on the final states (each example's last step).
    Inputs are never modified; ``dx`` is exactly 0 on padding."""
    runs, gates, hs = cache.runs, cache.gates, cache.hs
    steps, batch, four_h = gates.shape
    hidden, proj = four_h // 4, hs.shape[2]
    dtype = gates.dtype
    dgates = np.empty_like(gates)
    dh = np.array(runs.sort(dh_n, 0), dtype=dtype, copy=True)
    dc = np.array(runs.sort(dc_n, 0), dtype=dtype, copy=True)
    dy = runs.sort(dy, 1)
    dh_out = np.empty((steps, batch, proj), dtype=dtype) if w.w_hr is not None else None
    work = (
        np.empty((batch, four_h), dtype=dtype),
        np.empty((batch, hidden), dtype=dtype),
        np.empty((batch, hidden), dtype=dtype),
        np.empty((batch, hidden), dtype=dtype),
    )
    for t0, t1, n in reversed(runs.segments):
        _backward_steps(
            w,
            (gates[t0:t1, :n], cache.cs[t0:t1, :n], cache.tanh_c[t0:t1, :n]),
            dy[t0:t1, :n],
            dgates[t0:t1, :n],
            None if dh_out is None else dh_out[t0:t1, :n],
            (dh[:n], dc[:n]),
            tuple(buffer[:n] for buffer in work),
        )
    runs.zero_padding(dgates)
    flat = dgates.reshape(steps * batch, four_h)
    x = cache.x
    d_w_hr = None
    if dh_out is not None and cache.h_full is not None:
        runs.zero_padding(dh_out)
        d_w_hr = dh_out.reshape(steps * batch, proj).T @ cache.h_full.reshape(steps * batch, hidden)
    return LayerGrads(
        dx=runs.unsort((flat @ w.w_ih).reshape(x.shape), 1),
        dh0=runs.unsort(dh, 0),
        dc0=runs.unsort(dc, 0),
        w_ih=flat.T @ x.reshape(steps * batch, x.shape[2]),
        w_hh=flat.T @ hs[:steps].reshape(steps * batch, proj),
        bias=flat.sum(axis=0) if w.bias is not None else None,
        w_hr=d_w_hr,
    )


def _backward_steps(
    w: LayerWeights,
    saved: tuple[np.ndarray, np.ndarray, np.ndarray],
    dy: np.ndarray,
    dgates: np.ndarray,
    dh_out: np.ndarray | None,
    carry: tuple[np.ndarray, np.ndarray],
    work: tuple[np.ndarray, ...],
) -> None:
    """BPTT over S steps of n rows, last step first, on views: ``saved`` = (gates, c_{t-1},
    tanh(c_t)) ``[S, n, ...]``, ``dy [S, n, P]``; writes ``dgates [S, n, 4H]`` (to the
    pre-activations) and ``dh_out [S, n, P]`` (the gradient reaching each projected h). ``carry``
    = ``(dh [n, P], dc [n, H])`` comes in at the segment's end and leaves at its start; ``work``
    holds scratch ``[n, 4H]`` and three ``[n, H]``."""
    gates, cs, tanh_c = saved
    dh, dc = carry
    slope, tanh_slope, dh_full, tmp = work
    hidden = tanh_c.shape[2]
    two_h, three_h = 2 * hidden, 3 * hidden
    for t in range(gates.shape[0] - 1, -1, -1):
        a = gates[t]
        i, f, g, o = a[:, :hidden], a[:, hidden:two_h], a[:, two_h:three_h], a[:, three_h:]
        dz = dgates[t]
        if dh_out is None or w.w_hr is None:
            np.add(dy[t], dh, out=dh_full)
        else:
            np.add(dy[t], dh, out=dh_out[t])
            np.matmul(dh_out[t], w.w_hr, out=dh_full)
        np.multiply(dh_full, tanh_c[t], out=dz[:, three_h:])  # dL/do
        np.multiply(tanh_c[t], tanh_c[t], out=tanh_slope)  # dc += dh * o * (1 - tanh(c)^2)
        np.subtract(1.0, tanh_slope, out=tanh_slope)
        np.multiply(dh_full, o, out=tmp)
        tmp *= tanh_slope
        dc += tmp
        np.multiply(dc, g, out=dz[:, :hidden])  # dL/di
        np.multiply(dc, cs[t], out=dz[:, hidden:two_h])  # dL/df
        np.multiply(dc, i, out=dz[:, two_h:three_h])  # dL/dg
        # d(activation)/d(pre-activation): a (1 - a) for the sigmoids, 1 - g^2 for g
        np.subtract(1.0, a, out=slope)
        slope *= a
        np.multiply(g, g, out=slope[:, two_h:three_h])
        np.subtract(1.0, slope[:, two_h:three_h], out=slope[:, two_h:three_h])
        dz *= slope  # to pre-activations
        dc *= f
        np.matmul(dz, w.w_hh, out=dh)
