"""``generate`` carries the recurrent state (linear time) and samples exactly what rerunning the
whole sequence for every token samples (kept below as the oracle); the ``Stepper`` fed a sequence
in pieces gives the whole-sequence output; models that cannot step are refused with the fix."""

from __future__ import annotations

import re
import time
from typing import Any

import attrs
import numpy as np
import pytest

import specchain as sc
from specchain.generation import Stepper, _sample, generate, step_rule
from specchain.models import zoo
from specchain.modules import (
    LSTM,
    Embedding,
    LastStep,
    Linear,
    LSTMVariant,
    Reverse,
    Select,
    Tanh,
)
from specchain.params import runtime_generator
from specchain.spec import Context, NNModuleSpec, Params
from specchain.types import DimEnv, TensorType, Type


def quadratic_generate(
    model: sc.SpecChain, prompt: np.ndarray, n: int, temperature: float = 1.0, rng: Any = None
) -> np.ndarray:
    """The definition before state was carried: rerun the chain on the whole sequence so far
    (inference mode) for every token and sample from its last step."""
    generator = runtime_generator(rng)
    out = np.empty((prompt.shape[0] + n, prompt.shape[1]), dtype=prompt.dtype)
    out[: prompt.shape[0]] = prompt
    for t in range(prompt.shape[0], prompt.shape[0] + n):
        out[t] = _sample(model(out[:t])[-1], temperature, None, generator)
    return out


PROMPT = np.array([[1, 2, 3, 4], [0, 5, 9, 2], [7, 7, 1, 0]], dtype=np.int64)  # [T=3, B=4]


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("temperature", [1.0, 0.6, 0.0])
def test_samples_equal_the_rerun_definition(
    cell: str, num_layers: int, dtype: type, temperature: float
) -> None:
    model = zoo.language_model(11, 12, num_layers=num_layers, dropout=0.3, cell=cell).to(dtype)
    expected = quadratic_generate(model, PROMPT, 25, temperature, rng=3)
    np.testing.assert_array_equal(generate(model, PROMPT, 25, temperature, rng=3), expected)


def test_samples_equal_for_every_lstm_variant_option_and_unbatched_prompts() -> None:
    for model in (
        Embedding(11, 6) >> LSTM(6, 8, proj_size=3) >> Linear(3, 9),
        Embedding(11, 6) >> LSTMVariant(6, 8, peephole=True, num_layers=2) >> Linear(8, 9),
        Embedding(11, 6) >> LSTM(6, 8, return_state=True) >> Select(0) >> Tanh() >> Linear(8, 9),
    ):
        model.to(np.float64)
        expected = quadratic_generate(model, PROMPT, 12, rng=0)
        np.testing.assert_array_equal(generate(model, PROMPT, 12, rng=0), expected)
        single = quadratic_generate(model, PROMPT[:, :1], 12, rng=0)[:, 0]
        np.testing.assert_array_equal(generate(model, PROMPT[:, 0], 12, rng=0), single)


def test_a_model_declaring_lengths_generates_like_the_plain_one() -> None:
    sc.seed(0)
    declared = zoo.language_model(11, 12, num_layers=2, lengths=True)
    sc.seed(0)
    plain = zoo.language_model(11, 12, num_layers=2)
    np.testing.assert_array_equal(
        generate(declared, PROMPT, 10, rng=1), generate(plain, PROMPT, 10, rng=1)
    )


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_stepper_in_pieces_equals_the_whole_sequence(cell: str, rng: np.random.Generator) -> None:
    model = zoo.language_model(11, 12, num_layers=2, cell=cell).to(np.float64)
    tokens = rng.integers(0, 11, (9, 3))
    stepper = Stepper(model)
    pieces = [stepper(tokens[a:b]) for a, b in [(0, 4), (4, 5), (5, 9)]]
    np.testing.assert_allclose(np.concatenate(pieces), model(tokens), rtol=1e-12, atol=1e-12)
    stepper.reset()
    np.testing.assert_allclose(stepper(tokens[:2]), model(tokens[:2]), rtol=1e-12, atol=1e-12)


def test_time_per_token_does_not_grow_with_the_sequence() -> None:
    """Linear time: the 400th token costs what the 40th does (the rerun costs 10x more)."""
    model = zoo.language_model(20, 16)
    stepper, token = Stepper(model), np.zeros((1, 1), dtype=np.int64)

    def per_step(count: int) -> float:
        start = time.perf_counter()
        for _ in range(count):
            stepper(token)
        return (time.perf_counter() - start) / count

    per_step(40)
    early = min(per_step(40) for _ in range(5))
    for _ in range(400):
        stepper(token)
    late = min(per_step(40) for _ in range(5))
    assert late < 3 * early, (early, late)


# --- top_k ------------------------------------------------------------------------------------


def fixed_logits_model() -> sc.SpecChain:
    """Token 0 -> logits [1, 0, 2, -1] (test_train's sampling model)."""
    model = Embedding(3, 3) >> Linear(3, 4)
    model.to(np.float64)
    params = model.named_parameters()
    params["embedding.weight"][...] = np.eye(3)
    params["linear.bias"][...] = 0.0
    params["linear.weight"][...] = np.array([[1.0, 0, 0], [0.0, 0, 0], [2.0, 0, 0], [-1.0, 0, 0]])
    return model


def test_top_k_draws_from_the_k_most_likely_tokens_renormalised() -> None:
    prompt = np.zeros((1, 4000), dtype=np.int64)
    out = generate(fixed_logits_model(), prompt, 1, top_k=2, rng=0)
    freq = np.bincount(out[1], minlength=4) / 4000
    expected = np.array([np.exp(1.0), 0.0, np.exp(2.0), 0.0]) / (np.exp(1.0) + np.exp(2.0))
    np.testing.assert_allclose(freq, expected, atol=0.03)
    assert freq[1] == 0 and freq[3] == 0


def test_top_k_edges() -> None:
    model = zoo.language_model(11, 12)
    greedy = generate(model, PROMPT, 8, temperature=0.0)
    np.testing.assert_array_equal(generate(model, PROMPT, 8, top_k=1, rng=5), greedy)
    everything = generate(model, PROMPT, 8, rng=5)
    np.testing.assert_array_equal(generate(model, PROMPT, 8, top_k=11, rng=5), everything)
    np.testing.assert_array_equal(generate(model, PROMPT, 8, top_k=50, rng=5), everything)
    with pytest.raises(sc.SpecError, match=r"generate\.top_k must be a positive int, got 0"):
        generate(model, PROMPT, 3, top_k=0)


# --- models that cannot step ------------------------------------------------------------------


def test_a_bidirectional_layer_is_refused_with_the_fix() -> None:
    model = Embedding(5, 4) >> LSTM(4, 6, bidirectional=True) >> Linear(12, 5)
    message = (
        "stepping node 'lstm' (LSTM): a bidirectional LSTM reads each sequence backwards from its "
        "end, so it cannot run one new step at a time; build the language model with "
        "bidirectional=False"
    )
    with pytest.raises(sc.SpecError, match="^" + re.escape(message) + "$"):
        generate(model, PROMPT % 5, 3, rng=0)


def test_a_layer_acting_across_time_is_refused_when_the_stepper_is_built() -> None:
    model = Embedding(5, 4) >> Reverse() >> LSTM(4, 6) >> Linear(6, 5)
    with pytest.raises(
        sc.SpecError,
        match=r"cannot run node 'reverse' \(Reverse\) one step at a time: it acts across time "
        r"steps and has no step rule.*@specchain\.generation\.step_rule\(Reverse\)",
    ):
        Stepper(model)


def test_a_model_that_is_not_a_language_model_is_refused() -> None:
    states = Embedding(5, 4) >> LSTM(4, 6, return_state=True)  # (y, (h_n, c_n)), not logits
    with pytest.raises(sc.ShapeError, match=r"from int\[T, B\] to logits \[T, B, V\], got "):
        generate(states, PROMPT % 5, 2, rng=0)
    with pytest.raises(sc.SpecError, match=r"'last_step' \(LastStep\)"):
        generate(Embedding(5, 4) >> LSTM(4, 6) >> LastStep() >> Linear(6, 5), PROMPT % 5, 2)


# --- a user's layer with a step rule ----------------------------------------------------------


@attrs.define(eq=False)
class RunningSum(NNModuleSpec):
    """A user's layer acting across time: ``y[t] = x[0] + ... + x[t]`` over ``[T, B, F]``."""

    @property
    def in_type(self) -> Type:
        return TensorType(("T", "B", "F"))

    def infer(self, in_type: Type, dims: DimEnv) -> Type:
        return in_type

    def forward(self, params: Params, x: np.ndarray, ctx: Context) -> tuple[np.ndarray, None]:
        return np.cumsum(x, axis=0), None

    def backward(self, params: Params, saved: None, dy: np.ndarray) -> tuple[np.ndarray, Params]:
        return np.cumsum(dy[::-1], axis=0)[::-1], {}


@step_rule(RunningSum)
def _step_running_sum(
    spec: RunningSum, params: Params, x: np.ndarray, state: Any, ctx: Context
) -> tuple[np.ndarray, np.ndarray]:
    y = np.cumsum(x, axis=0) + (0.0 if state is None else state)
    return y, y[-1]


def test_a_registered_step_rule_makes_a_users_layer_step() -> None:
    model = (Embedding(7, 4) >> RunningSum() >> Linear(4, 7)).to(np.float64)
    tokens = PROMPT % 7
    stepper = Stepper(model)
    pieces = np.concatenate([stepper(tokens[:1]), stepper(tokens[1:])])
    np.testing.assert_allclose(pieces, model(tokens), rtol=1e-12, atol=1e-12)
    expected = quadratic_generate(model, tokens, 10, rng=2)
    np.testing.assert_array_equal(generate(model, tokens, 10, rng=2), expected)


def test_train_generate_is_the_same_function() -> None:
    from specchain import train

    assert train.generate is generate


def test_the_stepper_checks_its_input_and_the_batch_it_carries() -> None:
    stepper = Stepper(zoo.language_model(11, 12))
    with pytest.raises(TypeError, match="input dtype complex128 is not supported"):
        stepper(PROMPT.astype(complex))
    stepper(PROMPT)  # a batch of 4
    with pytest.raises(
        sc.ShapeError,
        match=r"stepping node 'lstm' \(LSTM\): LSTM: the carried state is for a batch of 4, got "
        r"a batch of 2; call reset\(\) on the Stepper before a new batch",
    ):
        stepper(PROMPT[:, :2])
    stepper.reset()
    assert stepper(PROMPT[:, :2]).shape == (3, 2, 11)
