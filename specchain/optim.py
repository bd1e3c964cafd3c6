"""Optimizers with ``torch.optim``'s update rules, and global gradient-norm clipping.

``SGD`` and ``Adam`` follow the single-tensor code paths of ``torch.optim.SGD`` and
``torch.optim.Adam`` operation for operation (same formulas, same order, same state), so a
specchain model and its PyTorch twin stay together step after step. The parameters are the live
arrays of ``model.named_parameters()`` and are updated in place; ``step(grads)`` takes the dict
that ``model.value_and_grad`` returns (there is no ``zero_grad``: gradients come back fresh).

Pass the model itself rather than its ``named_parameters()`` dict: the optimizer then looks the
arrays up at every step, so it keeps working after ``model.to(...)`` or ``model.load_state_dict``
(both put new arrays in place of the old ones).

``step`` is all-or-nothing: every gradient is checked before anything changes, and a failing step
leaves every parameter and buffer as it was (see ``Optimizer``).

``clip_grad_norm(grads, max_norm)`` (from ``specchain.clip``) rescales a grads dict in place like
``torch.nn.utils.clip_grad_norm_``. ``save_optimizer(opt, path)`` / ``load_optimizer(opt, path)``
keep the state in a ``.safetensors`` file, never a pickle (``specchain.optim_state``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from specchain.chain import SpecChain
from specchain.clip import clip_grad_norm
from specchain.optim_state import load_optimizer, save_optimizer
from specchain.spec import NNModuleSpec
from specchain.state import StateDictError
from specchain.types import ShapeError, SpecError
from specchain.validate import (
    SpecTypeError,
    check_flag,
    check_float_array,
    check_non_negative,
    check_positive,
    check_unit_interval,
    shown,
    wrong_type,
)

ParamSource = SpecChain | NNModuleSpec | Mapping[str, np.ndarray]
Grads = Mapping[str, np.ndarray]


# --- the base class ---------------------------------------------------------------------------


class Optimizer:
    """Shared machinery: the parameter source, per-parameter state, checks and state dicts.

    ``step`` is all-or-nothing, in three phases: it checks every gradient (names, dtypes, shapes,
    finiteness when ``check_finite`` is set), then computes every parameter's new value and new
    state into fresh arrays (``_plan``), and only then writes them (copies that cannot fail). A
    bad gradient, or an error while computing (``np.errstate(all="raise")``, ``MemoryError``),
    leaves every parameter and every state buffer as it was. The price is one extra array per
    parameter and buffer while the step runs. ``check_finite`` is a setting of this object, not a
    hyper-parameter: ``state_dict`` does not carry it.

    Subclasses list their hyper-parameters in ``hyperparameters``, check them in ``_validate``
    (which runs at construction, at every step and on ``load_state_dict``, so a value assigned to
    ``opt.lr`` is checked too) and compute one parameter's update in ``_plan``.
    """

    hyperparameters: ClassVar[tuple[str, ...]] = ()

    def __init__(self, params: ParamSource, check_finite: bool = False) -> None:
        self._source = _source(params, type(self).__name__)
        self.state: dict[str, dict[str, Any]] = {}
        self.check_finite = check_flag(type(self).__name__, "check_finite", check_finite)

    @property
    def params(self) -> dict[str, np.ndarray]:
        """The parameters this optimizer updates (the model's live arrays)."""
        if isinstance(self._source, SpecChain):
            return self._source.named_parameters()
        return dict(self._source)

    def _validate(self) -> None:
        raise NotImplementedError

    def _plan(
        self, param: np.ndarray, grad: np.ndarray, state: dict[str, Any]
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """``(new parameter value, new state)`` for one parameter, as fresh arrays.

        ``grad`` has the parameter's shape and dtype; ``state`` is a new dict holding this
        parameter's buffers (cast to its dtype). Never writes into ``param``, ``grad`` or the
        arrays of ``state``: ``step`` commits the results only once every parameter is planned.
        """
        raise NotImplementedError

    def step(self, grads: Grads) -> None:
        """Update every parameter that has a gradient in ``grads``, in place; all or nothing.

        A parameter without a gradient is left alone (as torch skips ``p.grad is None``).
        Gradients are cast to their parameter's dtype (any real numeric array or nested list
        works). An unknown name, a gradient of another shape or a non-numeric dtype, or (with
        ``check_finite=True``) a NaN or infinite entry raises before anything changes.
        """
        self._validate()
        self.check_finite = check_flag(type(self).__name__, "check_finite", self.check_finite)
        params = self.params
        checked = self._checked_grads(grads, params)
        planned = {
            name: self._plan(params[name], grad, self._state_as(name, params[name].dtype))
            for name, grad in checked.items()
        }
        for name, (value, state) in planned.items():  # the commit: copies that cannot fail
            np.copyto(params[name], value)
            if state or name in self.state:
                self.state[name] = state

    def _checked_grads(self, grads: Grads, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every gradient checked and cast to its parameter's dtype, or one error listing all
        the gradients with the first problem found (names, then dtypes, then shapes, then
        finiteness); nothing is changed either way."""
        owner = f"{type(self).__name__}.step"
        if not isinstance(grads, Mapping):
            raise wrong_type(owner, "grads", "a dict {parameter name: gradient array}", grads)
        unknown = [name for name in grads if name not in params]
        if unknown:
            missing = [name for name in params if name not in grads]
            hint = f" (no gradient for {missing})" if missing else ""
            raise SpecError(
                f"{owner}: gradients for unknown parameters {unknown}{hint}; this optimizer "
                f"updates {list(params)}; nothing was updated"
            )
        arrays = {name: _as_real_array(grad) for name, grad in grads.items()}
        wrong_kind = [
            f"{name!r} is {shown_kind}" for name, (_, shown_kind) in arrays.items() if shown_kind
        ]
        if wrong_kind:
            raise SpecTypeError(
                f"{owner}: gradients must be real numeric arrays (they are cast to their "
                f"parameter's dtype), but {'; '.join(wrong_kind)}; nothing was updated"
            )
        wrong_shape = [
            f"gradient of {name!r} has shape {list(grad.shape)}, the parameter has "
            f"{list(params[name].shape)}"
            for name, (grad, _) in arrays.items()
            if grad.shape != params[name].shape
        ]
        if wrong_shape:
            raise ShapeError(f"{owner}: {'; '.join(wrong_shape)}; nothing was updated")
        cast = {
            name: grad.astype(params[name].dtype, copy=False) for name, (grad, _) in arrays.items()
        }
        if self.check_finite:
            for name, grad in cast.items():
                _check_finite(owner, name, grad)
        return cast

    def _state_as(self, name: str, dtype: np.dtype[Any]) -> dict[str, Any]:
        """A new dict of this parameter's buffers, cast to ``dtype``: after ``model.to(...)``
        the buffers follow the parameter's dtype (as in torch)."""
        buffers = self.state.get(name, {}).items()
        return {
            k: v.astype(dtype, copy=False) if isinstance(v, np.ndarray) else v for k, v in buffers
        }

    # --- state dicts ------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """``{"state": {param name: {buffer: array copy, ...}}, "param_groups": [{hyper-parameters,
        "params": [names]}]}``: torch's layout, keyed by parameter names instead of indices."""
        group: dict[str, Any] = {key: getattr(self, key) for key in self.hyperparameters}
        group["params"] = list(self.params)
        state = {
            name: {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in buffers.items()}
            for name, buffers in self.state.items()
        }
        return {"state": state, "param_groups": [group]}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore hyper-parameters and buffers (copied, cast to each parameter's dtype).
        Everything is checked first; nothing changes unless everything fits."""
        owner = type(self).__name__
        try:
            (group,) = state_dict["param_groups"]
            saved_state = state_dict["state"]
        except (KeyError, TypeError, ValueError):
            raise StateDictError(
                f"{owner}.load_state_dict expects {{'state': ..., 'param_groups': [one group]}} "
                "as returned by state_dict()"
            ) from None
        params = self.params
        problems = []
        if list(group.get("params", [])) != list(params):
            problems.append(
                f"the saved parameters {list(group.get('params', []))} are not this "
                f"optimizer's {list(params)}"
            )
        missing = [key for key in self.hyperparameters if key not in group]
        if missing:
            problems.append(f"missing hyper-parameters {missing}")
        state: dict[str, dict[str, Any]] = {}
        for name, buffers in saved_state.items():
            if name not in params:
                problems.append(f"state for unknown parameter {name!r}")
                continue
            state[name] = {}
            for key, value in buffers.items():
                if isinstance(value, np.ndarray):
                    if value.shape != params[name].shape:
                        problems.append(
                            f"{name}.{key}: shape {list(value.shape)} != parameter shape "
                            f"{list(params[name].shape)}"
                        )
                    value = value.astype(params[name].dtype)  # a copy
                state[name][key] = value
        if problems:
            raise StateDictError(f"{owner}.load_state_dict failed:\n  " + "\n  ".join(problems))
        previous = {key: getattr(self, key) for key in self.hyperparameters}
        for key in self.hyperparameters:
            value = group[key]
            setattr(self, key, tuple(value) if isinstance(value, list) else value)
        try:
            self._validate()
        except (SpecError, TypeError):
            for key, value in previous.items():
                setattr(self, key, value)
            raise
        self.state = state

    def __repr__(self) -> str:
        hyper = ", ".join(f"{key}={getattr(self, key)!r}" for key in self.hyperparameters)
        if self.check_finite:
            hyper += ", check_finite=True"
        return f"{type(self).__name__}({hyper}, params={len(self.params)})"


def _source(params: ParamSource, owner: str) -> SpecChain | dict[str, np.ndarray]:
    if isinstance(params, NNModuleSpec):
        params = params.as_chain()
    if isinstance(params, SpecChain):
        named = params.named_parameters()
        source: SpecChain | dict[str, np.ndarray] = params
    elif isinstance(params, Mapping):
        named = dict(params)
        source = named
    else:
        raise TypeError(
            f"{owner} takes a model or its named_parameters() dict, got {type(params).__name__}"
        )
    if not named:
        raise SpecError(f"{owner} got an empty parameter list; the model has no parameters")
    for name, value in named.items():
        check_float_array(owner, f"params[{name!r}]", value)
    return source


def _as_real_array(grad: object) -> tuple[np.ndarray, str]:
    """``(array, "")`` for a real numeric gradient, else ``(empty array, what it is)``."""
    try:
        array = np.asarray(grad)
    except (ValueError, TypeError):
        return np.empty(0), f"a {type(grad).__name__} numpy cannot make an array of"
    if array.dtype.kind not in "biuf":
        return array, f"a {array.dtype} array"
    return array, ""


def _check_finite(owner: str, name: str, grad: np.ndarray) -> None:
    """Raise naming the first NaN or infinite entry of ``grad`` (in C order), if any."""
    bad = ~np.isfinite(grad)
    if bad.any():
        first = np.unravel_index(int(np.argmax(bad)), grad.shape)
        raise SpecError(
            f"{owner}: the gradient of {name!r} is not finite: {shown(grad[first])} at index "
            f"{[int(i) for i in first]} ({int(bad.sum())} of {grad.size} entries); nothing was "
            "updated (check_finite=True). Look for NaN/inf in the inputs or the loss, or lower "
            "the learning rate"
        )


# --- SGD --------------------------------------------------------------------------------------


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, exactly as ``torch.optim.SGD``:

    ``g = ±grad (+ weight_decay * p)``; with momentum, ``buf = g`` on the first step, then
    ``buf = momentum * buf + (1 - dampening) * g``, and ``g = g + momentum * buf`` (Nesterov) or
    ``g = buf``; finally ``p -= lr * g``.

    Args:
        params: the model (preferred) or its ``named_parameters()`` dict.
        lr: learning rate, > 0.
        momentum: momentum factor, >= 0.
        dampening: dampening of the momentum, >= 0.
        nesterov: Nesterov momentum (needs ``momentum > 0`` and ``dampening == 0``).
        weight_decay: L2 penalty added to the gradient, >= 0.
        maximize: ascend the objective instead of descending it.
        check_finite: refuse a step whose gradients hold a NaN or infinite entry, naming the
            parameter and the first bad index (off by default, as in torch; ``fit`` checks
            the gradients itself).
    """

    hyperparameters = ("lr", "momentum", "dampening", "nesterov", "weight_decay", "maximize")

    def __init__(
        self,
        params: ParamSource,
        lr: float,
        momentum: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        maximize: bool = False,
        check_finite: bool = False,
    ) -> None:
        super().__init__(params, check_finite)
        self.lr = lr
        self.momentum = momentum
        self.dampening = dampening
        self.nesterov = nesterov
        self.weight_decay = weight_decay
        self.maximize = maximize
        self._validate()

    def _validate(self) -> None:
        self.lr = check_positive("SGD", "lr", self.lr)
        self.momentum = check_non_negative("SGD", "momentum", self.momentum)
        self.dampening = check_non_negative("SGD", "dampening", self.dampening)
        self.weight_decay = check_non_negative("SGD", "weight_decay", self.weight_decay)
        self.nesterov = check_flag("SGD", "nesterov", self.nesterov)
        self.maximize = check_flag("SGD", "maximize", self.maximize)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise SpecError(
                "SGD nesterov=True requires momentum > 0 and dampening = 0, got "
                f"momentum={self.momentum}, dampening={self.dampening}"
            )

    def _plan(
        self, param: np.ndarray, grad: np.ndarray, state: dict[str, Any]
    ) -> tuple[np.ndarray, dict[str, Any]]:
        g = -grad if self.maximize else grad
        if self.weight_decay != 0:
            g = g + self.weight_decay * param
        if self.momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = g.copy()
            else:
                buf = buf * self.momentum
                buf += (1 - self.dampening) * g
            state["momentum_buffer"] = buf
            g = g + self.momentum * buf if self.nesterov else buf
        return param - self.lr * g, state


# --- Adam -------------------------------------------------------------------------------------


class Adam(Optimizer):
    """Adam (and AMSGrad), exactly as ``torch.optim.Adam``'s single-tensor path:

    ``g = ±grad (+ weight_decay * p)``, ``m = lerp(m, g, 1 - beta1)``,
    ``v = beta2 * v + (1 - beta2) * g * g``, ``v_max = max(v_max, v)`` (AMSGrad),
    ``denom = sqrt(v or v_max) / sqrt(1 - beta2^t) + eps``,
    ``p += (-lr / (1 - beta1^t)) * m / denom``.

    Args:
        params: the model (preferred) or its ``named_parameters()`` dict.
        lr: learning rate, > 0.
        betas: ``(beta1, beta2)``, each in [0, 1).
        eps: added to the denominator, >= 0.
        weight_decay: L2 penalty added to the gradient (not decoupled, as in ``Adam``), >= 0.
        amsgrad: keep the running maximum of ``v``.
        maximize: ascend the objective instead of descending it.
        check_finite: refuse a step whose gradients hold a NaN or infinite entry, naming the
            parameter and the first bad index (off by default, as in torch; ``fit`` checks
            the gradients itself).
    """

    hyperparameters = ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize")

    def __init__(
        self,
        params: ParamSource,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        maximize: bool = False,
        check_finite: bool = False,
    ) -> None:
        super().__init__(params, check_finite)
        self.lr = lr
        self.betas = betas
        self.eps = eps
        self.weight_decay = weight_decay
        self.amsgrad = amsgrad
        self.maximize = maximize
        self._validate()

    def _validate(self) -> None:
        self.lr = check_positive("Adam", "lr", self.lr)
        if not isinstance(self.betas, (tuple, list)) or len(self.betas) != 2:
            raise wrong_type("Adam", "betas", "a pair (beta1, beta2)", self.betas)
        self.betas = (
            check_unit_interval("Adam", "betas[0]", self.betas[0]),
            check_unit_interval("Adam", "betas[1]", self.betas[1]),
        )
        self.eps = check_non_negative("Adam", "eps", self.eps)
        self.weight_decay = check_non_negative("Adam", "weight_decay", self.weight_decay)
        self.amsgrad = check_flag("Adam", "amsgrad", self.amsgrad)
        self.maximize = check_flag("Adam", "maximize", self.maximize)

    def _plan(
        self, param: np.ndarray, grad: np.ndarray, state: dict[str, Any]
    ) -> tuple[np.ndarray, dict[str, Any]]:
        beta1, beta2 = self.betas
        if not state:
            state.update(step=0, exp_avg=np.zeros_like(param), exp_avg_sq=np.zeros_like(param))
        state["step"] += 1
        step = state["step"]

        g = -grad if self.maximize else grad
        if self.weight_decay != 0:
            g = g + self.weight_decay * param
        exp_avg = state["exp_avg"] = _lerp(state["exp_avg"], g, 1 - beta1)
        exp_avg_sq = state["exp_avg_sq"] = state["exp_avg_sq"] * beta2
        exp_avg_sq += (1 - beta2) * g * g

        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
        step_size = self.lr / bias_correction1
        bias_correction2_sqrt = bias_correction2**0.5
        if self.amsgrad:
            max_sq = state.get("max_exp_avg_sq")  # None: first step, or amsgrad switched on
            max_sq = exp_avg_sq.copy() if max_sq is None else np.maximum(max_sq, exp_avg_sq)
            state["max_exp_avg_sq"] = max_sq
            denom = np.sqrt(max_sq) / bias_correction2_sqrt
        else:
            denom = np.sqrt(exp_avg_sq) / bias_correction2_sqrt
        denom += self.eps
        return param + (-step_size * exp_avg) / denom, state


def _lerp(start: np.ndarray, end: np.ndarray, weight: float) -> np.ndarray:
    """``torch.lerp``'s formula, into a new array: exact at both ends of the weight range."""
    if abs(weight) < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (1 - weight)


__all__ = ["SGD", "Adam", "Optimizer", "clip_grad_norm", "load_optimizer", "save_optimizer"]
