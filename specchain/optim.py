"""Optimizers with ``torch.optim``'s update rules, and global gradient-norm clipping.

``SGD`` and ``Adam`` follow the single-tensor code paths of ``torch.optim.SGD`` and
``torch.optim.Adam`` operation for operation (same formulas, same order, same state), so a
specchain model and its PyTorch twin stay together step after step. The parameters are the live
arrays of ``model.named_parameters()`` and are updated in place; ``step(grads)`` takes the dict
that ``model.value_and_grad`` returns (there is no ``zero_grad``: gradients come back fresh).

Pass the model itself rather than its ``named_parameters()`` dict: the optimizer then looks the
arrays up at every step, so it keeps working after ``model.to(...)`` or ``model.load_state_dict``
(both put new arrays in place of the old ones).

``clip_grad_norm(grads, max_norm)`` rescales a grads dict in place like
``torch.nn.utils.clip_grad_norm_``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from specchain.chain import SpecChain
from specchain.spec import NNModuleSpec
from specchain.state import StateDictError
from specchain.types import ShapeError, SpecError
from specchain.validate import (
    check_flag,
    check_float_array,
    check_non_negative,
    check_number,
    check_positive,
    check_unit_interval,
    out_of_range,
    wrong_type,
)

ParamSource = SpecChain | NNModuleSpec | Mapping[str, np.ndarray]
Grads = Mapping[str, np.ndarray]


# --- the base class ---------------------------------------------------------------------------


class Optimizer:
    """Shared machinery: the parameter source, per-parameter state, checks and state dicts.

    Subclasses list their hyper-parameters in ``hyperparameters``, check them in ``_validate``
    (which runs at construction, at every step and on ``load_state_dict``, so a value assigned to
    ``opt.lr`` is checked too) and update one parameter in ``_update``.
    """

    hyperparameters: ClassVar[tuple[str, ...]] = ()

    def __init__(self, params: ParamSource) -> None:
        self._source = _source(params, type(self).__name__)
        self.state: dict[str, dict[str, Any]] = {}

    @property
    def params(self) -> dict[str, np.ndarray]:
        """The parameters this optimizer updates (the model's live arrays)."""
        if isinstance(self._source, SpecChain):
            return self._source.named_parameters()
        return dict(self._source)

    def _validate(self) -> None:
        raise NotImplementedError

    def _update(self, name: str, param: np.ndarray, grad: np.ndarray) -> None:
        raise NotImplementedError

    def step(self, grads: Grads) -> None:
        """Update every parameter that has a gradient in ``grads``, in place.

        A parameter without a gradient is left alone (as torch skips ``p.grad is None``); a
        gradient for an unknown name or with another shape is an error.
        """
        self._validate()
        params = self.params
        owner = type(self).__name__
        unknown = [name for name in grads if name not in params]
        if unknown:
            raise SpecError(
                f"{owner}.step: gradients for unknown parameters {unknown}; this optimizer "
                f"updates {list(params)}"
            )
        for name, grad in grads.items():
            param = params[name]
            grad = np.asarray(grad)
            if grad.shape != param.shape:
                raise ShapeError(
                    f"{owner}.step: gradient of {name!r} has shape {list(grad.shape)}, "
                    f"the parameter has {list(param.shape)}"
                )
            self._match_state_dtype(name, param.dtype)
            self._update(name, param, grad.astype(param.dtype, copy=False))

    def _match_state_dtype(self, name: str, dtype: np.dtype[Any]) -> None:
        """After ``model.to(...)`` the buffers follow the parameter's dtype (as in torch)."""
        for key, value in self.state.get(name, {}).items():
            if isinstance(value, np.ndarray) and value.dtype != dtype:
                self.state[name][key] = value.astype(dtype)

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
    ) -> None:
        super().__init__(params)
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

    def _update(self, name: str, param: np.ndarray, grad: np.ndarray) -> None:
        g = -grad if self.maximize else grad
        if self.weight_decay != 0:
            g = g + self.weight_decay * param
        if self.momentum != 0:
            buffers = self.state.setdefault(name, {})
            buf = buffers.get("momentum_buffer")
            if buf is None:
                buf = buffers["momentum_buffer"] = g.copy()
            else:
                buf *= self.momentum
                buf += (1 - self.dampening) * g
            g = g + self.momentum * buf if self.nesterov else buf
        param -= self.lr * g


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
    ) -> None:
        super().__init__(params)
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

    def _update(self, name: str, param: np.ndarray, grad: np.ndarray) -> None:
        beta1, beta2 = self.betas
        state = self.state.get(name)
        if state is None:
            state = self.state[name] = {
                "step": 0,
                "exp_avg": np.zeros_like(param),
                "exp_avg_sq": np.zeros_like(param),
            }
            if self.amsgrad:
                state["max_exp_avg_sq"] = np.zeros_like(param)
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        state["step"] += 1
        step = state["step"]

        g = -grad if self.maximize else grad
        if self.weight_decay != 0:
            g = g + self.weight_decay * param
        _lerp_(exp_avg, g, 1 - beta1)
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * g * g

        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
        step_size = self.lr / bias_correction1
        bias_correction2_sqrt = bias_correction2**0.5
        if self.amsgrad:
            max_sq = state.get("max_exp_avg_sq")
            if max_sq is None:  # amsgrad switched on mid-run: start from the current v
                max_sq = state["max_exp_avg_sq"] = exp_avg_sq.copy()
            np.maximum(max_sq, exp_avg_sq, out=max_sq)
            denom = np.sqrt(max_sq) / bias_correction2_sqrt
        else:
            denom = np.sqrt(exp_avg_sq) / bias_correction2_sqrt
        denom += self.eps
        param += (-step_size * exp_avg) / denom


def _lerp_(start: np.ndarray, end: np.ndarray, weight: float) -> None:
    """``torch.lerp_``'s formula, in place: exact at both ends of the weight range."""
    if abs(weight) < 0.5:
        start += weight * (end - start)
    else:
        start[...] = end - (end - start) * (1 - weight)


# --- gradient clipping ------------------------------------------------------------------------


def clip_grad_norm(
    grads: Mapping[str, np.ndarray] | list[np.ndarray],
    max_norm: float,
    norm_type: float | str = 2.0,
    error_if_nonfinite: bool = False,
) -> float:
    """Rescale ``grads`` in place so that their global norm is at most ``max_norm``.

    As ``torch.nn.utils.clip_grad_norm_``: the total is the ``norm_type``-norm of the per-array
    norms (the norm of all gradients as one vector; ``norm_type`` ``inf`` or ``"inf"`` takes the
    largest magnitude), every array is multiplied by ``min(max_norm / (total + 1e-6), 1)``, and
    the total norm *before* clipping is returned. A NaN or infinite total raises ``SpecError``
    when ``error_if_nonfinite`` is set; otherwise it is applied anyway, as torch does (NaN
    gradients stay NaN, infinite norms zero the finite entries).
    """
    max_norm = check_number("clip_grad_norm", "max_norm", max_norm)
    if max_norm < 0:
        raise out_of_range("clip_grad_norm", "max_norm", ">= 0", max_norm)
    order = _norm_order(norm_type)
    items = list(grads.items()) if isinstance(grads, Mapping) else list(enumerate(grads))
    arrays = [check_float_array("clip_grad_norm", f"grads[{key!r}]", a) for key, a in items]
    if not arrays:
        return 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        norms = np.array([_vector_norm(a, order) for a in arrays])
        total = float(_vector_norm(norms, order))
    if error_if_nonfinite and not math.isfinite(total):
        raise SpecError(
            f"the total norm of order {norm_type} of the gradients is non-finite ({total}), so "
            "it cannot be clipped; pass error_if_nonfinite=False to scale by it anyway"
        )
    coef = min(max_norm / (total + 1e-6), 1.0) if not math.isnan(total) else math.nan
    with np.errstate(invalid="ignore"):  # inf * 0 = nan, as in torch
        for a in arrays:
            a *= a.dtype.type(coef)
    return total


def _norm_order(norm_type: float | str) -> float:
    what = "a number > 0 or 'inf'"
    if isinstance(norm_type, str):
        if norm_type.lower() in ("inf", "+inf"):
            return math.inf
        raise out_of_range("clip_grad_norm", "norm_type", what, norm_type)
    if check_number("clip_grad_norm", "norm_type", norm_type) <= 0:
        raise out_of_range("clip_grad_norm", "norm_type", what, norm_type)
    return float(norm_type)


def _vector_norm(a: np.ndarray, order: float) -> float:
    flat = np.abs(a.ravel().astype(np.float64, copy=False))
    if flat.size == 0:
        return 0.0
    if order == math.inf:
        return float(flat.max())
    if order == 2.0:
        return float(np.sqrt(np.dot(flat, flat)))
    if order == 1.0:
        return float(flat.sum())
    return float(np.sum(flat**order) ** (1.0 / order))
