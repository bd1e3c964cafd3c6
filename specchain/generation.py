"""Sampling from a language model in linear time: ``generate`` and the ``Stepper`` it runs on.

A ``Stepper`` runs a chain a few time steps at a time and carries every recurrent layer's state
from one call to the next, so feeding a sequence in pieces gives what one call on the whole
sequence gives (in inference mode), and each new token costs one step, not a rerun of the
sequence. Each node of the chain steps one of three ways:

- a layer that acts on every time step alone (``NNModuleSpec.acts_per_step``: ``Embedding``,
  ``Linear``, ``Dropout``, activations, ``Select``, ...) runs on the new steps only;
- a layer with a *step rule* (``step_rule``) runs on the new steps from the state its previous
  call left: the built-in rules cover the unidirectional recurrent stacks (``LSTM``, ``GRU``,
  ``RNN``, ``LSTMVariant``, with or without ``return_state``) and ``Input``;
- anything else (a bidirectional layer, ``Reverse``, ``LastStep``, attention over the sequence)
  is refused when the ``Stepper`` is built or first run, with the fix.

A step rule is ``rule(spec, params, x, state, ctx) -> (y, state)``: ``x`` the node's input for
the new steps, ``state`` what the rule returned last time (None on the first call); register one
for a layer of yours with ``@step_rule(MyLayer)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from specchain import graph as g
from specchain.chain import SpecChain
from specchain.engine import Step, check_input
from specchain.graph import INPUT
from specchain.inputs import Input
from specchain.modules.recurrent_base import initial_states, read_sequence, suffix
from specchain.modules.recurrent_stack import Stacked
from specchain.numerics import softmax
from specchain.padded import Padded
from specchain.params import DEFAULT_DTYPE, RngLike, runtime_generator
from specchain.spec import Context, NNModuleSpec, Params, Value
from specchain.types import ShapeError, SpecError
from specchain.validate import (
    check_int_array,
    check_non_negative,
    check_non_negative_int,
    check_positive_int,
)

StepRule = Callable[[Any, Params, Value, Any, Context], tuple[Value, Any]]
"""``rule(spec, params, x, state, ctx) -> (y, state)``; ``state`` is None on the first call."""

_RULES: dict[type, StepRule] = {}
R = TypeVar("R", bound=StepRule)


def step_rule(cls: type) -> Callable[[R], R]:
    """Register how instances of ``cls`` (and its subclasses) run a few steps at a time while
    carrying their state (see the module docstring)::

        @step_rule(MyRecurrentLayer)
        def _step(spec, params, x, state, ctx):
            ...
            return y, new_state
    """

    def register(rule: R) -> R:
        _RULES[cls] = rule
        return rule

    return register


def find_rule(spec: NNModuleSpec) -> StepRule | None:
    """The step rule of ``spec``'s class or its nearest base class that has one."""
    return next((_RULES[c] for c in type(spec).__mro__ if c in _RULES), None)


# --- the built-in rules -----------------------------------------------------------------------


@step_rule(Stacked)
def _step_recurrent(
    spec: Stacked, params: Params, x: Value, state: Any, ctx: Context
) -> tuple[Value, Any]:
    """A unidirectional recurrent stack from its carried states (each ``[L, B, S]``; zeros, or
    the ``(x, state)`` input's state, on the first call). Inference only: no dropout between
    layers, as in the stack's own inference forward."""
    family = spec.signature.family
    if spec.bidirectional:
        raise SpecError(
            f"a bidirectional {family} reads each sequence backwards from its end, so it cannot "
            "run one new step at a time; build the language model with bidirectional=False"
        )
    if isinstance(x, Padded) or (isinstance(x, tuple) and isinstance(x[0], Padded)):
        raise SpecError(f"{family} steps plain sequences; give the Stepper arrays, not Padded")
    seq, given, layout = read_sequence(x, spec.signature, spec.batch_first)
    if state is None:
        slots = spec.state_slots()
        state = initial_states(given, slots, spec.num_layers, seq.shape[1], seq.dtype, layout)
    elif state[0].shape[1] != seq.shape[1]:
        raise ShapeError(
            f"{family}: the carried state is for a batch of {state[0].shape[1]}, got a batch of "
            f"{seq.shape[1]}; call reset() on the Stepper before a new batch"
        )
    kernel, finals = spec.direction(), tuple(np.empty_like(s) for s in state)
    layer_in = seq
    for layer in range(spec.num_layers):
        starts = tuple(s[layer] for s in state)
        layer_in, ends, _ = kernel.forward(params, suffix(layer, 0), layer_in, starts, None)
        for final, end in zip(finals, ends):
            final[layer] = end
    y: Value = layout.from_time_major(layer_in)
    if spec.return_state:
        shown = tuple(layout.state_out(s) for s in finals)
        y = (y, shown[0] if len(shown) == 1 else shown)
    return y, finals


@step_rule(Input)
def _step_input(
    spec: Input, params: Params, x: Value, state: Any, ctx: Context
) -> tuple[Value, Any]:
    """An ``Input`` passes the new steps through; one declared with ``lengths=True`` takes the
    plain steps too (every stepped sequence is whole: no padding)."""
    return x, None


# --- the stepper ------------------------------------------------------------------------------


def _as_chain(model: SpecChain | NNModuleSpec) -> SpecChain:
    return model.as_chain() if isinstance(model, NNModuleSpec) else SpecChain.of(model)


class Stepper:
    """Runs ``model`` on consecutive pieces of a sequence in inference mode, carrying the state
    of every recurrent layer between calls.

    ``stepper(x)`` takes the next ``t`` steps of the input (``[t, B, ...]``, or ``int[t, B]``
    tokens) and returns the model's output for them (``[t, B, ...]``); after calls on ``x1``
    then ``x2`` the outputs equal ``model(concatenate([x1, x2]))`` split in two (up to
    floating-point rounding). ``reset()`` starts a new sequence. Building it refuses a model
    with a node that cannot step (see the module docstring), naming the node and the fix.
    """

    def __init__(self, model: SpecChain | NNModuleSpec) -> None:
        self.chain = _as_chain(model)
        self._rules: dict[str, StepRule | None] = {}
        for step in self.chain.plan.steps:
            rule = find_rule(step.spec)
            if rule is None and not step.per_step:
                raise _cannot_step(step)
            self._rules[step.node] = rule
        self._params_dtype = self.chain.dtype  # None without parameters
        self._dtype = self._params_dtype or DEFAULT_DTYPE
        self._generator = runtime_generator(None)  # inference draws nothing; layers get one
        self._state: dict[str, Any] = {}

    def reset(self) -> None:
        """Forget the carried states: the next call starts a new sequence."""
        self._state = {}

    def __call__(self, x: Value) -> Value:
        check_input(self.chain, x, self._params_dtype)
        plan = self.chain.plan
        values: dict[str, Value] = {INPUT: x}
        for step in plan.steps:
            inp = _gather(values, step.edges)
            ctx = Context(False, self._generator, self._dtype, step.in_type)
            rule = self._rules[step.node]
            try:
                if rule is None:
                    values[step.node], _ = step.spec.forward(step.spec.params, inp, ctx)
                else:
                    values[step.node], self._state[step.node] = rule(
                        step.spec, step.spec.params, inp, self._state.get(step.node), ctx
                    )
            except SpecError as err:  # name the node, as the engine's forward does
                if err.args and isinstance(err.args[0], str):
                    where = f"stepping node {step.node!r} ({step.spec.kind})"
                    err.args = (f"{where}: {err.args[0]}", *err.args[1:])
                raise
        return _gather(values, plan.out_edges)


def _gather(values: dict[str, Value], edges: tuple[tuple[str, int | None, g.Index], ...]) -> Value:
    """A node's input (or the chain's output) from the values of the nodes before it."""
    if len(edges) == 1 and edges[0][1] is None:
        src, _, index = edges[0]
        return g.select_value(values[src], index)
    return tuple(g.select_value(values[src], index) for src, _, index in edges)


def _cannot_step(step: Step) -> SpecError:
    kind = step.spec.kind
    return SpecError(
        f"cannot run node {step.node!r} ({kind}) one step at a time: it acts across time steps "
        "and has no step rule, so each new token would need the whole sequence again. Build the "
        "model from layers that act on each step (Embedding, Linear, Dropout, ...) and "
        "unidirectional LSTM/GRU/RNN layers, or register how the layer steps with "
        f"@specchain.generation.step_rule({kind}) (a function (spec, params, x, state, ctx) "
        "-> (y, state))"
    )


# --- sampling ---------------------------------------------------------------------------------


def generate(
    model: SpecChain | NNModuleSpec,
    prompt: np.ndarray,
    n: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    rng: RngLike = None,
) -> np.ndarray:
    """Sample ``n`` tokens from a language model, one at a time, in time linear in ``n``.

    ``model`` maps token ids ``int[T, B]`` to logits ``[T, B, V]`` (``Embedding >> LSTM ... >>
    Linear(H, V)``, ``sc.models.language_model``). The prompt runs once; each new token is drawn
    from ``softmax(logits / temperature)`` of the last step, then fed back as one step from the
    carried recurrent state (a ``Stepper``, in inference mode). The samples are those of
    rerunning the chain on the whole sequence for every token, for the same ``rng``.

    Args:
        prompt: ``int[T, B]`` token ids, T >= 1 (an unbatched ``[T]`` prompt gives ``[T + n]``).
        n: tokens to sample.
        temperature: divides the logits; ``0`` takes the argmax (greedy decoding).
        top_k: draw only among the ``top_k`` most likely tokens (None: all of them).
        rng: seeds the sampling (None: the library's run-time generator).

    Returns:
        ``int[T + n, B]``: the prompt followed by the samples.
    """
    chain = _as_chain(model)
    prompt = check_int_array(
        "generate", "prompt", prompt, "an integer numpy array of token ids [T, B]"
    )
    if prompt.ndim not in (1, 2) or prompt.shape[0] == 0:
        raise ShapeError(
            f"generate: prompt must be [T, B] (or [T]) with T >= 1, got {list(prompt.shape)}"
        )
    n = check_non_negative_int("generate", "n", n)
    temperature = check_non_negative("generate", "temperature", temperature)
    if top_k is not None:
        top_k = check_positive_int("generate", "top_k", top_k)
    generator = runtime_generator(rng)
    stepper = Stepper(chain)
    unbatched = prompt.ndim == 1
    tokens = prompt[:, None] if unbatched else prompt
    start = tokens.shape[0]
    out = np.empty((start + n, tokens.shape[1]), dtype=prompt.dtype)
    out[:start] = tokens
    if n > 0:
        logits = _logits(stepper, tokens)
        for t in range(start, start + n):
            out[t] = _sample(logits[-1], temperature, top_k, generator)
            if t + 1 < start + n:
                logits = _logits(stepper, out[t : t + 1])
    return out[:, 0] if unbatched else out


def _logits(stepper: Stepper, tokens: np.ndarray) -> np.ndarray:
    """The model's logits ``[t, B, V]`` for the next ``tokens [t, B]``."""
    logits = stepper(tokens)
    if not isinstance(logits, np.ndarray) or logits.shape[:-1] != tokens.shape:
        raise ShapeError(
            f"generate needs a model from int[T, B] to logits [T, B, V], got output "
            f"{getattr(logits, 'shape', type(logits).__name__)} for input {list(tokens.shape)}"
        )
    return logits


def _sample(
    logits: np.ndarray, temperature: float, top_k: int | None, generator: np.random.Generator
) -> np.ndarray:
    """One token per row of ``logits [B, V]``: one uniform draw per row against the cumulative
    softmax (ties of the top-k threshold all stay in)."""
    if temperature == 0.0:
        return np.argmax(logits, axis=-1)
    with np.errstate(over="ignore"):
        scaled = logits.astype(np.float64) / temperature
    if top_k is not None and top_k < scaled.shape[-1]:
        kth = np.partition(scaled, -top_k, axis=-1)[:, -top_k:].min(axis=-1, keepdims=True)
        scaled = np.where(scaled < kth, -np.inf, scaled)
    probs = softmax(scaled)
    cdf: np.ndarray = np.cumsum(probs, axis=-1)
    cdf /= cdf[:, -1:]
    u = generator.random((logits.shape[0],))
    return np.argmax(u[:, None] < cdf, axis=-1)


__all__ = ["StepRule", "Stepper", "find_rule", "generate", "step_rule"]
