"""``load_torch_state(model, state, key_map=...)``: hand-written PyTorch checkpoints whose keys
differ from the export's load into zoo specs given a key map (a dict of keys or module prefixes,
or a function), and then compute what the torch model computes. Unmatched keys are one error that
lists both sides and suggests a key map ready to paste."""

from __future__ import annotations

import ast
import re
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import specchain as sc
from specchain.exporters import pytorch
from specchain.exporters.pytorch import load_torch_state
from specchain.exporters.pytorch.checkpoints import rename
from specchain.models import ZOO, zoo

torch = pytest.importorskip("torch")
nn = torch.nn


class Tagger(nn.Module):
    """What a PyTorch engineer writes: tokens ``[T, B]`` -> tag scores ``[T, B, tags]``."""

    def __init__(self, vocab: int, dim: int, tags: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, dim)
        self.lstm = nn.LSTM(dim, dim)
        self.fc = nn.Linear(dim, tags)

    def forward(self, tokens: Any) -> Any:
        out, _ = self.lstm(self.embedding(tokens))
        return self.fc(out)


class StackedTagger(nn.Module):
    """Features ``[T, B, 8]`` -> ``[T, B, 4]`` through one ``nn.LSTM(num_layers=2)``."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(8, 32, num_layers=2)
        self.fc = nn.Linear(32, 4)

    def forward(self, x: Any) -> Any:
        out, _ = self.lstm(x)
        return self.fc(out)


def tagger() -> Tagger:
    """A float64 tagger whose tag set is the vocabulary (the zoo language model's shapes)."""
    torch.manual_seed(0)
    return Tagger(vocab=20, dim=16, tags=20).double().eval()


def language_model() -> sc.SpecChain:
    """The zoo spec for ``tagger()``: ``embedding``, ``lstm``, ``projection``."""
    return zoo.language_model(vocab_size=20, hidden_size=16).to(np.float64)


def assert_same_outputs(model: sc.SpecChain, module: Any, x: np.ndarray) -> None:
    with torch.no_grad():
        expected = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model(x), expected, rtol=1e-12, atol=1e-12)


def tokens() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 20, (7, 3))


def suggested_key_map(message: str) -> Any:
    """The ``key_map={...}`` of an error message, read as the Python it is written as."""
    found = re.search(r"key_map=(\{.*\})", message)
    assert found, message
    return ast.literal_eval(found.group(1))


def test_a_hand_written_tagger_loads_with_a_key_map_and_computes_the_same() -> None:
    module, model = tagger(), language_model()
    load_torch_state(model, module.state_dict(), key_map={"fc": "projection"})
    np.testing.assert_array_equal(
        model.named_parameters()["projection.weight"], module.fc.weight.detach().numpy()
    )
    assert_same_outputs(model, module, tokens())


def test_whole_keys_and_a_function_map_keys_too() -> None:
    module = tagger()
    exact = language_model()
    load_torch_state(
        exact, module, key_map={"fc.weight": "projection.weight", "fc.bias": "projection.bias"}
    )
    assert_same_outputs(exact, module, tokens())
    function = language_model()
    load_torch_state(function, module, key_map=lambda key: key.replace("fc.", "projection."))
    assert_same_outputs(function, module, tokens())


def test_one_nn_lstm_of_two_layers_loads_into_two_specs() -> None:
    """The zoo's two_layer (``lstm1 >> lstm2``) exports fused as ``nn.LSTM(num_layers=2)``, so
    a hand-written stack's ``lstm.*_l0``/``lstm.*_l1`` keys are its keys: only the head is
    renamed (by a function key map)."""
    torch.manual_seed(1)
    module = StackedTagger().double().eval()
    model = zoo.two_layer(8, 32, 4).to(np.float64)

    def key_map(key: str) -> str:
        return key.replace("fc.", "head.")

    load_torch_state(model, module, key_map=key_map)
    x = np.random.default_rng(2).standard_normal((6, 3, 8))
    assert_same_outputs(model, module, x)


# --- one error: both sides unmatched, and a key map to paste ------------------------------------


def test_unmatched_keys_are_listed_with_a_suggested_key_map() -> None:
    module, model = tagger(), language_model()
    before = model.state_dict()
    with pytest.raises(sc.StateDictError) as caught:
        load_torch_state(model, module)
    message = str(caught.value)
    assert message.splitlines() == [
        "load_torch_state: missing keys: ['projection.weight', 'projection.bias']; unexpected "
        "keys: ['fc.weight', 'fc.bias']",
        "  suggested (same shapes, similar names; check it): key_map={'fc': 'projection'}",
    ]
    for key, value in model.state_dict().items():  # nothing loaded
        np.testing.assert_array_equal(value, before[key])
    load_torch_state(model, module, key_map=suggested_key_map(message))  # pasted as it is
    assert_same_outputs(model, module, tokens())


def test_the_suggestion_pairs_layers_by_shape_and_position() -> None:
    """Every LSTM tensor of layer 0 has a twin of the same shape in layer 1 (``*_l0`` and
    ``*_l1`` of the fused ``nn.LSTM(num_layers=2)``): the suggestion still maps each checkpoint
    module onto its own, and loading with it reproduces torch."""
    torch.manual_seed(3)
    module = StackedTagger().double().eval()
    state = {k.replace("lstm.", "rnn."): v for k, v in module.state_dict().items()}
    model = zoo.two_layer(8, 32, 4).to(np.float64)
    with pytest.raises(sc.StateDictError, match=r"unexpected keys: \['rnn\.weight_ih_l0'") as e:
        load_torch_state(model, state)
    key_map = suggested_key_map(str(e.value))
    assert key_map == {"rnn": "lstm", "fc": "head"}
    load_torch_state(model, state, key_map=key_map)
    assert_same_outputs(model, module, np.random.default_rng(4).standard_normal((5, 2, 8)))


def test_a_given_key_map_is_completed_by_the_suggestion() -> None:
    state = tagger().state_dict()
    state["emb.weight"] = state.pop("embedding.weight")
    with pytest.raises(sc.StateDictError) as caught:
        load_torch_state(language_model(), state, key_map={"fc": "projection"})
    assert suggested_key_map(str(caught.value)) == {"fc": "projection", "emb": "embedding"}


def test_a_key_map_function_gets_the_pairs_to_return() -> None:
    with pytest.raises(
        sc.StateDictError,
        match=r"make key_map return these keys for these checkpoint keys: "
        r"\{'fc\.weight': 'projection\.weight', 'fc\.bias': 'projection\.bias'\}$",
    ):
        load_torch_state(language_model(), tagger(), key_map=lambda key: key)


def test_no_suggestion_when_no_shape_fits() -> None:
    torch.manual_seed(0)
    wrong = Tagger(vocab=20, dim=16, tags=5).double()
    with pytest.raises(
        sc.StateDictError, match=r"no unexpected key has the shape of a missing one: no key_map"
    ):
        load_torch_state(language_model(), wrong)


def test_shapes_are_checked_under_both_names() -> None:
    torch.manual_seed(0)
    wrong = Tagger(vocab=20, dim=16, tags=5).double()
    with pytest.raises(sc.StateDictError) as caught:
        load_torch_state(language_model(), wrong, key_map={"fc": "projection"})
    message = str(caught.value)
    assert "fc.weight (as projection.weight): shape [5, 16] != [20, 16]" in message
    assert "fc.bias (as projection.bias): shape [5] != [20]" in message


def test_dtypes_are_checked_with_the_fix() -> None:
    module = Tagger(vocab=20, dim=16, tags=20)  # float32, the model float64
    with pytest.raises(
        sc.StateDictError,
        match=re.escape(
            "embedding.weight: dtype float32 != the model's float64 (convert one: "
            "model.to(np.float32) or the state_dict's tensors)"
        ),
    ):
        load_torch_state(language_model(), module, key_map={"fc": "projection"})


def test_two_keys_mapped_to_one_and_unused_entries_are_reported() -> None:
    with pytest.raises(sc.StateDictError) as caught:
        load_torch_state(
            language_model(),
            tagger(),
            key_map={"fc": "projection", "embedding.weight": "projection.weight", "typo": "x"},
        )
    message = str(caught.value)
    assert (
        "checkpoint keys ['embedding.weight', 'fc.weight'] all map to 'projection.weight'; "
        "key_map must keep keys distinct"
    ) in message
    assert "key_map entries that match no checkpoint key: ['typo']" in message


def test_bad_key_maps_are_refused() -> None:
    with pytest.raises(TypeError, match=r"key_map must be a dict .* got list"):
        load_torch_state(language_model(), tagger(), key_map=[("fc", "projection")])  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"key_map maps str to str; these entries do not: \[\('fc', 1\)\]"
    ):
        load_torch_state(language_model(), tagger(), key_map={"fc": 1})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match=r"key_map\('embedding\.weight'\) returned NoneType"):
        load_torch_state(language_model(), tagger(), key_map=lambda key: None)  # type: ignore[arg-type,return-value]


def test_rename_prefers_a_whole_key_then_the_longest_prefix() -> None:
    key_map = {"a": "x", "a.b": "y", "a.b.w": "z"}
    assert rename("a.b.w", key_map) == "z"
    assert rename("a.b.v", key_map) == "y.v"
    assert rename("a.c", key_map) == "x.c"
    assert rename("ab.w", key_map) == "ab.w"  # a prefix ends at a dot
    assert rename("q", None) == "q"


MODULE_NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(sorted(ZOO)),
    new_names=st.lists(MODULE_NAMES, min_size=4, max_size=4, unique=True),  # up to 4 modules
)
def test_the_suggested_key_map_undoes_any_renaming_of_modules(
    name: str, new_names: list[str]
) -> None:
    """Rename every module of a zoo model's checkpoint (its export's state_dict) at random: the
    suggestion, pasted, loads each tensor into its own place."""
    model = ZOO[name].build()
    state = pytorch.torch_state(model, pytorch.assign_names(model))
    modules = list(dict.fromkeys(key.split(".")[0] for key in state))
    renames = dict(zip(modules, new_names))
    checkpoint = {renames[k.split(".")[0]] + k[k.index(".") :]: v for k, v in state.items()}
    sc.seed(7)
    fresh = ZOO[name].build()
    if set(checkpoint) != set(state):
        with pytest.raises(sc.StateDictError) as caught:
            load_torch_state(fresh, checkpoint)
        load_torch_state(fresh, checkpoint, key_map=suggested_key_map(str(caught.value)))
    else:
        load_torch_state(fresh, checkpoint)
    for key, value in pytorch.torch_state(fresh, pytorch.assign_names(fresh)).items():
        np.testing.assert_array_equal(value, state[key], err_msg=key)
