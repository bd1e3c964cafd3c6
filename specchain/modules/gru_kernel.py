"""The GRU kernel: one layer, one direction, forward and BPTT, written for BLAS.

Equations (PyTorch's, gate order r, z, n)::

    gi_t = W_ih x_t + b_ih;   gh_t = W_hh h_{t-1} + b_hh                   [B, 3H] each
    r = sigmoid(gi_r + gh_r);  z = sigmoid(gi_z + gh_z)
    n = tanh(gi_n + r * gh_n)                 (b_hn sits inside r * (W_hn h + b_hn))
    h_t = (1 - z) * n + z * h_{t-1}

Speed: the input projection of all timesteps is one GEMM; the recurrence works in preallocated
buffers with in-place gate math; backward stores the gradients of ``gi`` and ``gh`` of every step
and turns them into weight gradients with single GEMMs after the loop.

Lengths: as in ``lstm_kernel`` (``lengths_kernel.Runs``): each example runs its own first
``L_b`` steps exactly as torch runs a packed sequence; outputs past each length are exactly 0,
the final state is each example's state at its last step, and padding reaches no gradient.

Stability: ``sigmoid(a) = (1 + tanh(a / 2)) / 2`` never overflows; the r and z rows of both
weights and biases are halved (exact in binary floating point), so one ``tanh`` over the
contiguous ``[B, 2H]`` block and one affine map give both gates.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from specchain.modules.lengths_kernel import Runs


@attrs.frozen
class GRUWeights:
    """One direction of one layer: ``w_ih [3H, I]``, ``w_hh [3H, H]``, ``b_ih``/``b_hh [3H]``
    (both None without bias)."""

    w_ih: np.ndarray
    w_hh: np.ndarray
    b_ih: np.ndarray | None
    b_hh: np.ndarray | None

    @property
    def hidden(self) -> int:
        return int(self.w_hh.shape[0]) // 3


@attrs.frozen
class GRUCache:
    """What backward needs, with the batch sorted as ``runs`` says: the input ``x [T, B, I]``,
    the gates ``[T, B, 3H]`` (r, z, n after their nonlinearities), ``gh_n [T, B, H]``
    (``W_hn h + b_hn``) and every state ``hs [T + 1, B, H]`` (padding: zeros in ``x`` and
    ``hs[1:]``)."""

    runs: Runs
    x: np.ndarray
    gates: np.ndarray
    gh_n: np.ndarray
    hs: np.ndarray


@attrs.frozen
class GRUGrads:
    dx: np.ndarray  # [T, B, I]
    dh0: np.ndarray  # [B, H]
    w_ih: np.ndarray
    w_hh: np.ndarray
    b_ih: np.ndarray | None
    b_hh: np.ndarray | None


def _half_rz(hidden: int, dtype: np.dtype[Any]) -> np.ndarray:
    """Per-row scale: 1/2 for the r and z rows, 1 for the n rows."""
    scale = np.full(3 * hidden, 0.5, dtype)
    scale[2 * hidden :] = 1.0
    return scale


def gru_forward(
    x: np.ndarray, h0: np.ndarray, w: GRUWeights, lengths: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, GRUCache]:
    """Run one direction over ``x [T, B, I]`` from ``h0 [B, H]``, each example for its first
    ``lengths[b]`` steps (all T without ``lengths``).

    Returns ``y [T, B, H]`` (zero past each length), ``h_n [B, H]`` (each example's state at
    its last step) and the cache.
    """
    steps, batch, features = x.shape
    runs = Runs.of(lengths, steps, batch)
    x = runs.sorted_input(x)
    hidden = w.hidden
    scale = _half_rz(hidden, x.dtype)
    w_hh_t = np.ascontiguousarray((w.w_hh * scale[:, None]).T)
    b_hh = None if w.b_hh is None else w.b_hh * scale
    gates = np.matmul(x.reshape(steps * batch, features), (w.w_ih * scale[:, None]).T)
    gates = gates.reshape(steps, batch, 3 * hidden)
    if w.b_ih is not None:
        gates += w.b_ih * scale
    hs = np.empty((steps + 1, batch, hidden), dtype=x.dtype)
    gh_n = np.empty((steps, batch, hidden), dtype=x.dtype)
    hs[0] = runs.sort(h0, 0)
    recurrent = np.empty((batch, 3 * hidden), dtype=x.dtype)
    for t0, t1, n in runs.segments:
        _forward_steps(
            gates[t0:t1, :n], hs[t0 : t1 + 1, :n], gh_n[t0:t1, :n], w_hh_t, b_hh, recurrent[:n]
        )
    runs.zero_padding(hs[1:])
    cache = GRUCache(runs, x, gates, gh_n, hs)
    return runs.unsort(hs[1:], 1), runs.last(hs[1:]), cache


def _forward_steps(
    gates: np.ndarray,
    hs: np.ndarray,
    gh_n: np.ndarray,
    w_hh_t: np.ndarray,
    b_hh: np.ndarray | None,
    recurrent: np.ndarray,
) -> None:
    """The recurrence over S steps of n rows, in place on views: ``gates [S, n, 3H]`` (the input
    part, halved for r and z; they become r, z, n), ``hs [S + 1, n, H]`` (entry 0 given),
    ``gh_n [S, n, H]`` (written); ``recurrent [n, 3H]`` is scratch."""
    hidden = gh_n.shape[2]
    two_h = 2 * hidden
    for t in range(gates.shape[0]):
        g = gates[t]
        np.matmul(hs[t], w_hh_t, out=recurrent)
        if b_hh is not None:
            recurrent += b_hh
        rz, n = g[:, :two_h], g[:, two_h:]
        rz += recurrent[:, :two_h]
        np.tanh(rz, out=rz)
        rz *= 0.5
        rz += 0.5
        r, z = rz[:, :hidden], rz[:, hidden:]
        np.copyto(gh_n[t], recurrent[:, two_h:])
        np.multiply(r, gh_n[t], out=recurrent[:, two_h:])
        n += recurrent[:, two_h:]
        np.tanh(n, out=n)
        h = hs[t + 1]  # h = n + z * (h_prev - n)
        np.subtract(hs[t], n, out=h)
        h *= z
        h += n


def gru_backward(w: GRUWeights, cache: GRUCache, dy: np.ndarray, dh_n: np.ndarray) -> GRUGrads:
    """BPTT for ``gru_forward``: ``dy [T, B, H]`` on the outputs (ignored on padding) and
    ``dh_n [B, H]`` on the final state (each example's last step). Inputs are never modified;
    ``dx`` is exactly 0 on padding."""
    runs, gates, hs = cache.runs, cache.gates, cache.hs
    steps, batch, three_h = gates.shape
    hidden = three_h // 3
    dtype = gates.dtype
    d_gi = np.empty_like(gates)
    d_gh = np.empty_like(gates)
    dh = np.array(runs.sort(dh_n, 0), dtype=dtype, copy=True)
    dy = runs.sort(dy, 1)
    work = (np.empty((batch, hidden), dtype=dtype), np.empty((batch, hidden), dtype=dtype))
    for t0, t1, n in reversed(runs.segments):
        _backward_steps(
            w.w_hh,
            (gates[t0:t1, :n], cache.gh_n[t0:t1, :n], hs[t0:t1, :n]),
            dy[t0:t1, :n],
            (d_gi[t0:t1, :n], d_gh[t0:t1, :n]),
            dh[:n],
            (work[0][:n], work[1][:n]),
        )
    runs.zero_padding(d_gi)
    runs.zero_padding(d_gh)
    flat_i = d_gi.reshape(steps * batch, three_h)
    flat_h = d_gh.reshape(steps * batch, three_h)
    x = cache.x
    with_bias = w.b_ih is not None
    return GRUGrads(
        dx=runs.unsort((flat_i @ w.w_ih).reshape(x.shape), 1),
        dh0=runs.unsort(dh, 0),
        w_ih=flat_i.T @ x.reshape(steps * batch, x.shape[2]),
        w_hh=flat_h.T @ hs[:steps].reshape(steps * batch, hidden),
        b_ih=flat_i.sum(axis=0) if with_bias else None,
        b_hh=flat_h.sum(axis=0) if with_bias else None,
    )


def _backward_steps(
    w_hh: np.ndarray,
    saved: tuple[np.ndarray, np.ndarray, np.ndarray],
    dy: np.ndarray,
    d_out: tuple[np.ndarray, np.ndarray],
    dh: np.ndarray,
    work: tuple[np.ndarray, np.ndarray],
) -> None:
    """BPTT over S steps of n rows, last step first, on views: ``saved`` = (gates, gh_n,
    h_{t-1}) ``[S, n, ...]``, ``dy [S, n, H]``; writes ``d_out`` = (d gi, d gh) ``[S, n, 3H]``.
    ``dh [n, H]`` comes in at the segment's end and leaves at its start; ``work`` holds two
    scratch ``[n, H]``."""
    gates, gh_n, h_prev = saved
    d_gi, d_gh = d_out
    dh_t, tmp = work
    hidden = gh_n.shape[2]
    two_h = 2 * hidden
    for t in range(gates.shape[0] - 1, -1, -1):
        a = gates[t]
        r, z, n = a[:, :hidden], a[:, hidden:two_h], a[:, two_h:]
        di, dg = d_gi[t], d_gh[t]
        dr, dz, dn = di[:, :hidden], di[:, hidden:two_h], di[:, two_h:]
        np.add(dy[t], dh, out=dh_t)
        np.subtract(h_prev[t], n, out=dz)  # dL/dz = dh (h_prev - n)
        dz *= dh_t
        np.subtract(1.0, z, out=dn)  # dL/dn = dh (1 - z), then through tanh
        dn *= dh_t
        np.multiply(n, n, out=tmp)
        np.subtract(1.0, tmp, out=tmp)
        dn *= tmp
        np.multiply(dn, gh_n[t], out=dr)  # dL/dr = dn_pre * gh_n
        # through the sigmoids: a (1 - a) for r and z
        rz = a[:, :two_h]
        slope = dg[:, :two_h]
        np.subtract(1.0, rz, out=slope)
        slope *= rz
        di[:, :two_h] *= slope
        np.copyto(dg[:, :two_h], di[:, :two_h])
        np.multiply(dn, r, out=dg[:, two_h:])
        np.multiply(dh_t, z, out=dh)
        np.matmul(dg, w_hh, out=tmp)
        dh += tmp
