"""The LSTM kernel: one layer, one direction, forward and BPTT, written for BLAS.

Equations (PyTorch's, gate order i, f, g, o; ``P`` = projection size or ``H``)::

    z_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh                    [B, 4H]
    i, f, o = sigmoid(z_i), sigmoid(z_f), sigmoid(z_o);  g = tanh(z_g)
    c_t = f * c_{t-1} + i * g;    h_t = W_hr (o * tanh(c_t))   (W_hr = identity without projection)

Speed: the input projection of all timesteps is one GEMM; the recurrence works in preallocated
buffers with in-place gate math; backward stores the gate gradients of every step and turns them
into weight gradients with single GEMMs after the loop.

Stability: ``sigmoid(z) = (1 + tanh(z / 2)) / 2`` never overflows. The forward computes ``z / 2``
directly with weights whose i, f, o rows are halved (exact in binary floating point), so one
``tanh`` over the contiguous ``[B, 4H]`` block and one affine map give all four gates.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np


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
    """What backward needs: the input, gate activations, and every h, c and tanh(c)."""

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


def _gate_affine(hidden: int, dtype: np.dtype[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Per-column ``(scale, shift)``: 1/2 for the sigmoid gates i, f, o and (1, 0) for g."""
    scale = np.full(4 * hidden, 0.5, dtype)
    shift = np.full(4 * hidden, 0.5, dtype)
    scale[2 * hidden : 3 * hidden] = 1.0
    shift[2 * hidden : 3 * hidden] = 0.0
    return scale, shift


def layer_forward(
    x: np.ndarray, h0: np.ndarray, c0: np.ndarray, w: LayerWeights
) -> tuple[np.ndarray, LayerCache]:
    """Run one direction over ``x [T, B, I]`` from ``h0 [B, P]``, ``c0 [B, H]``.

    Returns ``y [T, B, P]`` (a view of the cache's ``hs[1:]``) and the cache.
    """
    x = np.ascontiguousarray(x)
    steps, batch, features = x.shape
    hidden, proj = w.hidden, w.w_hh.shape[1]
    scale, shift = _gate_affine(hidden, x.dtype)
    w_hh_t = np.ascontiguousarray((w.w_hh * scale[:, None]).T)
    gates = np.matmul(x.reshape(steps * batch, features), (w.w_ih * scale[:, None]).T)
    gates = gates.reshape(steps, batch, 4 * hidden)
    if w.bias is not None:
        gates += w.bias * scale
    hs = np.empty((steps + 1, batch, proj), dtype=x.dtype)
    cs = np.empty((steps + 1, batch, hidden), dtype=x.dtype)
    tanh_c = np.empty((steps, batch, hidden), dtype=x.dtype)
    h_full = np.empty((steps, batch, hidden), dtype=x.dtype) if w.w_hr is not None else None
    w_hr_t = w.w_hr.T if w.w_hr is not None else None
    hs[0], cs[0] = h0, c0
    recurrent = np.empty((batch, 4 * hidden), dtype=x.dtype)
    scratch = np.empty((batch, hidden), dtype=x.dtype)
    two_h, three_h = 2 * hidden, 3 * hidden
    for t in range(steps):
        z = gates[t]  # holds z / 2 for i, f, o and z for g; becomes the activations in place
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
    return hs[1:], LayerCache(x, gates, hs, cs, tanh_c, h_full)


def layer_backward(
    w: LayerWeights, cache: LayerCache, dy: np.ndarray, dh_n: np.ndarray, dc_n: np.ndarray
) -> LayerGrads:
    """BPTT for ``layer_forward``: ``dy [T, B, P]`` on the outputs, ``dh_n [B, P]`` and
    ``dc_n [B, H]`` on the final state. Inputs are never modified."""
    gates, hs, cs, tanh_c = cache.gates, cache.hs, cache.cs, cache.tanh_c
    steps, batch, four_h = gates.shape
    hidden, proj = four_h // 4, hs.shape[2]
    two_h, three_h = 2 * hidden, 3 * hidden
    dtype = gates.dtype
    dgates = np.empty_like(gates)
    slope = np.empty((batch, four_h), dtype=dtype)  # per step, kept in cache
    tanh_slope = np.empty((batch, hidden), dtype=dtype)
    dh = np.array(dh_n, dtype=dtype, copy=True)
    dc = np.array(dc_n, dtype=dtype, copy=True)
    dh_out = np.empty((steps, batch, proj), dtype=dtype) if w.w_hr is not None else None
    dh_full = np.empty((batch, hidden), dtype=dtype)
    tmp = np.empty((batch, hidden), dtype=dtype)
    for t in range(steps - 1, -1, -1):
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
    flat = dgates.reshape(steps * batch, four_h)
    x = cache.x
    d_w_hr = None
    if dh_out is not None and cache.h_full is not None:
        d_w_hr = dh_out.reshape(steps * batch, proj).T @ cache.h_full.reshape(steps * batch, hidden)
    return LayerGrads(
        dx=(flat @ w.w_ih).reshape(x.shape),
        dh0=dh,
        dc0=dc,
        w_ih=flat.T @ x.reshape(steps * batch, x.shape[2]),
        w_hh=flat.T @ hs[:steps].reshape(steps * batch, proj),
        bias=flat.sum(axis=0) if w.bias is not None else None,
        w_hr=d_w_hr,
    )
