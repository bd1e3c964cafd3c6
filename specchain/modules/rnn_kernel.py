"""The Elman RNN kernel: one layer, one direction, forward and BPTT, written for BLAS.

Equation (PyTorch's ``nn.RNN``; ``act`` is ``tanh`` or ``relu``)::

    h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)                [B, H]

Speed: the input projection of all timesteps is one GEMM; the recurrence adds one
``[B, H] x [H, H]`` product per step into preallocated buffers and applies the activation in
place. Backward needs only the saved outputs (``act'`` is ``1 - h^2`` for tanh and ``h > 0``
for relu, as torch computes it from the result), takes the slope of every step in one vectorised
operation, and turns the stored pre-activation gradients into weight gradients with single GEMMs
after the loop.

Lengths: as in ``lstm_kernel``, ``lengths`` (int ``[B]`` in ``1..T``, any order) make each
example run its own first ``L_b`` steps, exactly as torch runs a packed sequence
(``lengths_kernel.Runs``): outputs past each length are exactly 0, the final state is each
example's state at its last step, backward ignores ``dy`` on padding and gives exactly 0 for
``dx`` on padding.
"""

from __future__ import annotations

import attrs
import numpy as np

from specchain.modules.lengths_kernel import Runs

NONLINEARITIES = ("tanh", "relu")


@attrs.frozen
class RNNWeights:
    """One direction of one layer: ``w_ih [H, I]``, ``w_hh [H, H]``, ``bias [H]`` (the sum
    ``b_ih + b_hh``, or None) and the ``nonlinearity`` (``"tanh"`` or ``"relu"``)."""

    w_ih: np.ndarray
    w_hh: np.ndarray
    bias: np.ndarray | None
    nonlinearity: str


@attrs.frozen
class RNNCache:
    """What backward needs: the sorted input ``x [T, B, I]`` (zeros on padding) and every hidden
    state ``hs [T + 1, B, H]`` (``h_0 .. h_T``, zeros on padding), batch sorted as ``runs``
    says."""

    runs: Runs
    x: np.ndarray
    hs: np.ndarray


@attrs.frozen
class RNNGrads:
    dx: np.ndarray  # [T, B, I]
    dh0: np.ndarray  # [B, H]
    w_ih: np.ndarray  # [H, I]
    w_hh: np.ndarray  # [H, H]
    bias: np.ndarray | None  # [H]: the gradient of b_ih, equal to that of b_hh


def _activate(z: np.ndarray, out: np.ndarray, nonlinearity: str) -> None:
    if nonlinearity == "tanh":
        np.tanh(z, out=out)
    else:
        np.maximum(z, 0, out=out)


def rnn_forward(
    x: np.ndarray, h0: np.ndarray, w: RNNWeights, lengths: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, RNNCache]:
    """Run one direction over ``x [T, B, I]`` from ``h0 [B, H]``, each example for its first
    ``lengths[b]`` steps (all T without ``lengths``).

    Returns ``y [T, B, H]`` (zero past each length), ``h_n [B, H]`` (each example's state at its
    last step) and the cache.
    """
    steps, batch, features = x.shape
    hidden = w.w_hh.shape[0]
    runs = Runs.of(lengths, steps, batch)
    x = runs.sorted_input(x)
    pre = np.matmul(x.reshape(steps * batch, features), w.w_ih.T).reshape(steps, batch, hidden)
    if w.bias is not None:
        pre += w.bias
    hs = np.empty((steps + 1, batch, hidden), dtype=x.dtype)
    hs[0] = runs.sort(h0, 0)
    w_hh_t = np.ascontiguousarray(w.w_hh.T)
    recurrent = np.empty((batch, hidden), dtype=x.dtype)
    for t0, t1, n in runs.segments:
        rec = recurrent[:n]
        for t in range(t0, t1):
            z = pre[t, :n]
            np.matmul(hs[t, :n], w_hh_t, out=rec)
            z += rec
            _activate(z, hs[t + 1, :n], w.nonlinearity)
    runs.zero_padding(hs[1:])
    h_n = runs.last(hs[1:])
    return runs.unsort(hs[1:], 1), h_n, RNNCache(runs, x, hs)


def _slope(hs: np.ndarray, nonlinearity: str) -> np.ndarray:
    """``act'`` at every step from the outputs ``hs [T, B, H]``: ``1 - h^2`` or ``h > 0``."""
    if nonlinearity == "tanh":
        slope = np.multiply(hs, hs)
        np.subtract(1.0, slope, out=slope)
        return slope
    return (hs > 0).astype(hs.dtype)


def rnn_backward(w: RNNWeights, cache: RNNCache, dy: np.ndarray, dh_n: np.ndarray) -> RNNGrads:
    """BPTT for ``rnn_forward``: ``dy [T, B, H]`` on the outputs (ignored on padding) and
    ``dh_n [B, H]`` on the final state (each example's last step). Inputs are never modified;
    ``dx`` is exactly 0 on padding."""
    runs, hs, x = cache.runs, cache.hs, cache.x
    steps, batch, hidden = hs.shape[0] - 1, hs.shape[1], hs.shape[2]
    dtype = hs.dtype
    slope = _slope(hs[1:], w.nonlinearity)
    dz = np.empty((steps, batch, hidden), dtype=dtype)
    dh = np.array(runs.sort(dh_n, 0), dtype=dtype, copy=True)
    dy = runs.sort(dy, 1)
    for t0, t1, n in reversed(runs.segments):
        carry = dh[:n]
        for t in range(t1 - 1, t0 - 1, -1):
            d = dz[t, :n]
            np.add(dy[t, :n], carry, out=d)
            d *= slope[t, :n]
            np.matmul(d, w.w_hh, out=carry)
    runs.zero_padding(dz)
    flat = dz.reshape(steps * batch, hidden)
    return RNNGrads(
        dx=runs.unsort((flat @ w.w_ih).reshape(x.shape), 1),
        dh0=runs.unsort(dh, 0),
        w_ih=flat.T @ x.reshape(steps * batch, x.shape[2]),
        w_hh=flat.T @ hs[:steps].reshape(steps * batch, hidden),
        bias=flat.sum(axis=0) if w.bias is not None else None,
    )
