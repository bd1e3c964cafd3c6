"""Training steps on PyTorch for ``fit(..., engine="torch")``: the same spec, the same data.

``TorchEngine(chain, loss, optimizer, device)`` builds the exported module in memory (no files:
``pytorch.build_torch_module``), moves it to ``device`` and configures ``torch.optim.SGD`` /
``torch.optim.Adam`` from the specchain optimizer (same hyper-parameters, its state loaded, the
single-tensor path that ``specchain.optim`` mirrors). ``step(xb, yb)`` runs forward, the loss
(``torch_losses``), backward, optional gradient clipping and the optimizer step on torch tensors;
``finish()`` writes the trained weights into the spec's arrays (in place: the specchain optimizer
keeps holding them) and the torch optimizer's state into the specchain optimizer.

Equal and not: in float64 with dropout 0 the losses and parameters agree with the numpy engine
to rounding (the operations are the same, their summation order is not); dropout masks come
from torch's generator, so with dropout the runs differ (both are correct). The dropout stream is
the engine's own (``seed``; ``fit`` seeds it as every epoch starts from its ``rng``): swapped into
torch's global generator for the engine's steps, swapped out again by ``finish``. The targets get
the numpy loss's checks (shape, dtype, label range) before torch sees them.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np

from specchain import padded
from specchain.chain import SpecChain
from specchain.engines.torch_losses import torch_loss_value
from specchain.exporters.pytorch import arguments, lengths
from specchain.exporters.pytorch.naming import Names, assign_names
from specchain.exporters.pytorch.verify import build_torch_module
from specchain.losses import Loss
from specchain.optim import SGD, Adam, Optimizer
from specchain.tree import leaves, rebuild
from specchain.types import SpecError

ENGINES = ("numpy", "torch")


def require_torch(what: str = "engine='torch'") -> ModuleType:
    """``torch``, or an error naming the extra that installs it."""
    try:
        import torch
    except ImportError:
        raise SpecError(
            f"{what} needs PyTorch, which is not installed; install it with "
            "pip install 'specchain[torch]' (for a CPU-only build, first: pip install "
            "torch --index-url https://download.pytorch.org/whl/cpu)"
        ) from None
    return torch


class TorchEngine:
    """One model's training steps on torch (see the module docstring)."""

    def __init__(
        self,
        chain: SpecChain,
        loss: Loss,
        optimizer: Optimizer,
        device: str = "cpu",
        clip: float | None = None,
    ) -> None:
        torch = require_torch()
        self.torch = torch
        self.chain, self.loss, self.optimizer, self.clip = chain, loss, optimizer, clip
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise SpecError(
                f"fit: device={device!r}, but torch sees no CUDA device on this machine; "
                "use device='cpu' (or install a CUDA build of torch on a machine with a GPU)"
            )
        self.names: Names = assign_names(chain)
        held = torch.get_rng_state()  # torch draws initial weights, then takes the spec's
        self.module = build_torch_module(chain).to(self.device)
        torch.set_rng_state(held)
        self.keys = {ours: self.names.state_key(chain, ours) for ours in chain.named_parameters()}
        named = dict(self.module.named_parameters())
        self.params = {ours: named[theirs] for ours, theirs in self.keys.items()}
        self.torch_optimizer = _torch_optimizer(torch, optimizer, self.params)
        self.output_lengths = lengths.output_lengths_argument(chain, self.names)
        self.checked_inputs = self.checked_targets = False
        self.non_finite_flags = (  # the fused check's found-flag and unit scale (float32 only)
            torch.zeros(1, dtype=torch.float32, device=self.device),
            torch.ones(1, dtype=torch.float32, device=self.device),
        )
        self.module.train(True)  # dropout on: every step trains (validation runs in numpy)
        self.dropout_stream: Any = None  # this engine's torch RNG state (``seed``)
        self.user_stream: Any = None  # the caller's, held while the engine's is in use

    def refresh(self) -> None:
        """Take the spec's current weights, the optimizer's hyper-parameters and state (``fit``
        calls it before every epoch, so a callback's or the user's changes between epochs
        count, as with the numpy engine)."""
        mine = self.chain.named_parameters()
        with self.torch.no_grad():
            for ours, p in self.params.items():
                p.copy_(self.torch.from_numpy(mine[ours]))
        self.torch_optimizer = _torch_optimizer(self.torch, self.optimizer, self.params)
        self.module.train(True)
        self._use_own_stream()

    def seed(self, seed: int) -> None:
        """Seed this engine's own dropout stream (``fit`` seeds it before every epoch from its
        ``rng`` as the epoch starts, so a resumed run draws the masks the uninterrupted one
        drew). torch's dropout draws from the global generator, so the engine swaps its stream
        in for its steps (``refresh`` or the first ``gradients``) and ``finish`` swaps the
        caller's back: between epochs, and after ``fit``, torch's generators are where the
        caller left them. No global generator is reseeded."""
        cpu = self.torch.Generator().manual_seed(seed).get_state()
        cuda = None
        if self.device.type == "cuda":
            cuda = self.torch.Generator(device=self.device).manual_seed(seed).get_state()
        if self.user_stream is None:
            self.dropout_stream = (cpu, cuda)
        else:  # in use: the new stream takes over now
            self._set_rng_state((cpu, cuda))

    def _use_own_stream(self) -> None:
        """Swap this engine's dropout stream into torch's generator (once, until ``finish``)."""
        if self.dropout_stream is not None and self.user_stream is None:
            self.user_stream = self._rng_state()
            self._set_rng_state(self.dropout_stream)

    def _rng_state(self) -> tuple[Any, Any]:
        """The global generator's state on the CPU and, when training there, the CUDA device."""
        cuda = self.device.type == "cuda"
        return self.torch.get_rng_state(), (
            self.torch.cuda.get_rng_state(self.device) if cuda else None
        )

    def _set_rng_state(self, state: tuple[Any, Any]) -> None:
        cpu, cuda = state
        self.torch.set_rng_state(cpu)
        if cuda is not None:
            self.torch.cuda.set_rng_state(cuda, self.device)

    def step(self, xb: Any, yb: np.ndarray) -> tuple[float, float | None]:
        """One training step on a batch: ``(loss value, gradient norm before clipping or
        None)`` (``gradients`` then ``update``)."""
        value, norm, _ = self.gradients(xb, yb, outputs=False)
        self.update()
        return value, norm

    def gradients(
        self, xb: Any, yb: np.ndarray, outputs: bool = True
    ) -> tuple[float, float | None, Any]:
        """Forward, loss, backward and clipping on a batch: ``(loss value, gradient norm
        before clipping or None, the outputs as numpy (a ``Padded`` for a padded output), or
        None when not asked for)``. Raises ``FloatingPointError`` (nothing updated) if the loss
        or a gradient is not finite."""
        torch = self.torch
        self._use_own_stream()
        data, given = arguments.split_lengths(self.names, xb)
        if not self.checked_inputs:
            self._check_inputs(data)
        lengths_in = {i: self._tensor(v) for i, v in given.items()}
        if isinstance(data, np.ndarray):  # one input: the common case, without the tree walk
            tensors = self._tensor(data)
        else:
            tensors = rebuild(data, iter(self._tensor(a) for a in leaves(data)))
        out = self.module(*arguments.call_arguments(self.names, tensors, lengths_in))
        lens = None if self.output_lengths is None else given[self.output_lengths]
        keep = None if lens is None else self._keep_mask(out, lens)
        result = self._numpy_output(out, lens) if outputs else None
        if not self.checked_targets or self.device.type != "cpu":
            # numpy's checks of the targets: on the first batch; on a GPU on every batch (a
            # label out of range there is a device-side assert, not an error to translate)
            self.loss(self._numpy_output(out, lens) if result is None else result, yb)
            self.checked_targets = True
        target = self._tensor(yb)
        if not target.is_floating_point() and target.dtype != torch.int64:
            target = target.long()  # class indices of any integer type, as numpy takes them
        try:
            value = torch_loss_value(torch, self.loss, out, target, keep)
        except (IndexError, RuntimeError):  # e.g. a label out of range in a later batch:
            self.loss(self._numpy_output(out, lens), yb)  # numpy's message names it
            raise
        number = float(value.detach())
        if not math.isfinite(number):
            raise FloatingPointError(f"the loss is {number}")
        for p in self.params.values():  # zero_grad(set_to_none=True), without its profiler hooks
            p.grad = None
        value.backward()
        self._check_gradients(number)
        norm = None
        if self.clip is not None:
            grads = [p for p in self.params.values() if p.grad is not None]
            norm = float(torch.nn.utils.clip_grad_norm_(grads, self.clip, foreach=False))
        return number, norm, result

    def _check_gradients(self, loss: float) -> None:
        """Raise ``FloatingPointError`` naming the first parameter whose gradient holds a NaN
        or an infinity, as the numpy engine does. One fused pass over every gradient and one
        sync: the non-finite check of ``torch.amp.GradScaler`` (scaling by exactly 1, which
        changes no value); only after a hit is each gradient tested, to name it."""
        torch = self.torch
        grads = {ours: p.grad for ours, p in self.params.items() if p.grad is not None}
        if not grads:
            return
        found, one = self.non_finite_flags
        found.zero_()
        try:
            torch._amp_foreach_non_finite_check_and_unscale_(list(grads.values()), found, one)
        except (NotImplementedError, RuntimeError):  # a torch without the op on this device
            found.fill_(not all(bool(torch.isfinite(g).all()) for g in grads.values()))
        if not float(found):
            return
        bad = next(ours for ours, grad in grads.items() if not bool(torch.isfinite(grad).all()))
        raise FloatingPointError(f"the gradient of {bad!r} is not finite (the loss is {loss})")

    def update(self) -> None:
        """The optimizer step with the gradients of the last ``gradients`` call."""
        self.torch_optimizer.step()

    def _check_inputs(self, data: Any) -> None:
        """Refuse lengths the exported forward does not take, and data in another precision."""
        if padded.found(padded.attach(data, self.chain.in_type)):
            raise SpecError(
                "engine='torch' runs the exported module, whose forward takes lengths only where "
                "the model declares them; start the model with sc.Input(type, name=..., "
                "lengths=True) for each padded input, or train with engine='numpy'"
            )
        dtype = self.chain.dtype
        for leaf in leaves(data):
            kind = np.asarray(leaf).dtype
            if kind.kind == "f" and dtype is not None and kind != np.dtype(dtype):
                raise SpecError(
                    f"fit: the inputs are {kind} but the model is {dtype}; convert one, e.g. "
                    f"x.astype(np.{dtype}) or model.to(np.{kind})"
                )
        self.checked_inputs = True

    def _numpy_output(self, out: Any, lens: Any) -> Any:
        """The module's output as numpy (a ``Padded`` for a padded output), as the loss and the
        metrics take it."""
        result = out.detach().cpu().numpy()
        if lens is None:
            return result
        time, batch = padded.axes_for(self.chain.out_type, result.ndim)
        return padded.Padded(result, np.asarray(lens), time, batch)

    def _tensor(self, a: Any) -> Any:
        tensor = self.torch.from_numpy(np.ascontiguousarray(a))
        return tensor if self.device.type == "cpu" else tensor.to(self.device)

    def _keep_mask(self, out: Any, lens: Any) -> Any:
        """The positions of a padded output that count, as the numpy loss finds them."""
        shape = tuple(out.shape)
        time, batch = padded.axes_for(self.chain.out_type, len(shape))
        stand_in = padded.Padded(np.broadcast_to(np.float64(0), shape), lens, time, batch)
        _, keep = self.loss.kept_positions(stand_in, None, None, 0, 1)
        return self.torch.from_numpy(np.array(keep, dtype=bool)).to(self.device)

    def finish(self) -> None:
        """Copy the trained weights and optimizer state back into the spec and its optimizer."""
        mine = self.chain.named_parameters()
        with self.torch.no_grad():
            for ours, p in self.params.items():
                np.copyto(mine[ours], p.detach().cpu().numpy())
        self.optimizer.state = _specchain_state(self.torch_optimizer, self.params, mine)
        if self.user_stream is not None:  # the caller's generator back (see ``seed``)
            self.dropout_stream = self._rng_state()
            self._set_rng_state(self.user_stream)
            self.user_stream = None


def _torch_optimizer(torch: ModuleType, optimizer: Optimizer, params: dict[str, Any]) -> Any:
    """``torch.optim.SGD``/``Adam`` with the same hyper-parameters and state, single-tensor."""
    if not isinstance(optimizer, (Adam, SGD)):
        raise SpecError(
            f"engine='torch' trains with SGD or Adam from specchain.optim, got "
            f"{type(optimizer).__name__}; use one of those, or engine='numpy'"
        )
    settings = {key: getattr(optimizer, key) for key in optimizer.hyperparameters}  # torch's names
    kind = torch.optim.Adam if isinstance(optimizer, Adam) else torch.optim.SGD
    made = kind(list(params.values()), foreach=False, **settings)
    for name, buffers in optimizer.state.items():
        p = params[name]
        state: dict[str, Any] = {}
        for key, value in buffers.items():
            if key == "step":
                state[key] = torch.tensor(float(value), dtype=torch.float32)
            elif isinstance(value, np.ndarray):
                copied = value.astype(_numpy_dtype(p), copy=True)
                state[key] = torch.from_numpy(copied).to(p.device)
        if isinstance(optimizer, Adam) and optimizer.amsgrad and "exp_avg_sq" in state:
            # amsgrad switched on after some steps: the running maximum starts now (v >= 0)
            state.setdefault("max_exp_avg_sq", torch.zeros_like(state["exp_avg_sq"]))
        made.state[p] = state
    return made


def _numpy_dtype(p: Any) -> np.dtype[Any]:
    return np.dtype(str(p.dtype).removeprefix("torch."))


def _specchain_state(
    torch_optimizer: Any, params: dict[str, Any], mine: dict[str, np.ndarray]
) -> dict[str, dict[str, Any]]:
    """The torch optimizer's per-parameter state in ``specchain.optim``'s layout."""
    out: dict[str, dict[str, Any]] = {}
    for name, p in params.items():
        buffers = torch_optimizer.state.get(p)
        if not buffers:
            continue
        state: dict[str, Any] = {}
        for key, value in buffers.items():
            if key == "step":
                state[key] = int(value.item()) if hasattr(value, "item") else int(value)
            elif value is not None:
                state[key] = value.detach().cpu().numpy().astype(mine[name].dtype, copy=True)
        out[name] = state
    return out
