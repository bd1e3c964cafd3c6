"""The embedded Reber grammar: every generated string is accepted by an independent regular
expression, prefixes have the right legal continuations, encodings round-trip, and the two tasks
(second-to-last symbol, next symbol) have the targets they promise."""

from __future__ import annotations

import re

import numpy as np
import pytest

import specchain as sc
from specchain.data import IGNORE_INDEX, reber

# Independent recogniser, written from the automaton by hand (not from the library's table):
# from state 4, loop X T* V P back to 4, then leave with S or X T* V V.
_FROM_4 = r"(?:XT*VP)*(?:S|XT*VV)"
REBER = rf"B(?:TS*X{_FROM_4}|PT*V(?:V|P{_FROM_4}))E"
EMBEDDED = re.compile(rf"B([TP]){REBER}\1E")
KNOWN_REBER = ["BTXSE", "BPVVE", "BTSSXXTVVE", "BPTVPSE", "BTXXVVE", "BPVPXVPXVPXVVE"]
NOT_REBER = ["BTXXE", "BTSE", "BPE", "BTXSEE", "TXSE", "BPVSE"]


def accepted(s: str) -> bool:
    return EMBEDDED.fullmatch(s) is not None


def test_the_independent_recogniser_itself() -> None:
    for s in KNOWN_REBER:
        assert re.fullmatch(REBER, s), s
        assert accepted(f"BT{s}TE") and accepted(f"BP{s}PE")
        assert not accepted(f"BT{s}PE") and not accepted(f"BP{s}TE")
    for s in NOT_REBER:
        assert not re.fullmatch(REBER, s), s


def test_generated_strings_are_grammatical() -> None:
    strings = reber.embedded_reber_strings(500, rng=0)
    assert len(strings) == 500
    assert [s for s in strings if not accepted(s)] == []
    assert all(reber.is_embedded_reber(s) for s in strings)
    assert {s[1] for s in strings} == {"T", "P"}
    generator = np.random.default_rng(1)
    for _ in range(200):
        assert re.fullmatch(REBER, reber.reber_string(generator))


def test_every_arc_is_used() -> None:
    # symbol pairs the automaton allows inside a Reber string, listed by hand per state
    arcs = {"BT", "BP", "TS", "TX", "TT", "TV", "PT", "PV", "PX", "PS",
            "SS", "SX", "SE", "XX", "XS", "XT", "XV", "VP", "VV", "VE"}  # fmt: skip
    inner = [s[2:-2] for s in reber.embedded_reber_strings(300, rng=2)]
    assert {s[k : k + 2] for s in inner for k in range(len(s) - 1)} == arcs


def test_generation_is_deterministic_by_seed() -> None:
    assert reber.embedded_reber_strings(50, rng=3) == reber.embedded_reber_strings(50, rng=3)
    assert reber.embedded_reber_strings(50, rng=3) != reber.embedded_reber_strings(50, rng=4)
    generator = np.random.default_rng(5)
    first = reber.embedded_reber_strings(5, rng=generator)
    assert first != reber.embedded_reber_strings(5, rng=generator)  # a generator advances


def test_max_length() -> None:
    strings = reber.embedded_reber_strings(200, rng=0, max_length=12)
    assert max(len(s) for s in strings) <= 12 and min(len(s) for s in strings) == 9
    assert all(accepted(s) for s in strings)
    with pytest.raises(sc.SpecError, match="max_length must be an int >= 9, got 8"):
        reber.embedded_reber_strings(3, max_length=8)
    with pytest.raises(sc.SpecError, match="n must be an int >= 0, got -1"):
        reber.embedded_reber_strings(-1)


# --- legal continuations ------------------------------------------------------------------------

LEGAL = {
    "": "B",
    "B": "TP",
    "BT": "B",
    "BP": "B",
    "BTB": "TP",
    "BTBT": "SX",  # inner state 2
    "BTBTS": "SX",
    "BTBP": "TV",  # inner state 3
    "BTBPT": "TV",
    "BTBTX": "XS",  # inner state 4
    "BTBPV": "PV",  # inner state 5
    "BTBPVP": "XS",
    "BTBTXS": "E",  # inner state 6
    "BTBTXSE": "T",  # the long-term dependency: the branch symbol again
    "BPBTXSE": "P",
    "BTBTXSET": "E",
    "BTBTXSETE": "",
}


@pytest.mark.parametrize(("prefix", "legal"), LEGAL.items(), ids=lambda v: v or "empty")
def test_legal_next_table(prefix: str, legal: str) -> None:
    assert reber.legal_next(prefix) == frozenset(legal)


def test_legal_next_is_sound_and_tight_on_samples() -> None:
    rng = np.random.default_rng(0)
    for s in reber.embedded_reber_strings(100, rng=6):
        for t in range(len(s)):
            legal = reber.legal_next(s[:t])
            assert s[t] in legal
            for symbol in legal:  # every legal symbol leads to a string the regex accepts
                walk = s[:t] + symbol
                while nxt := sorted(reber.legal_next(walk)):
                    walk += nxt[int(rng.integers(len(nxt)))]
                assert accepted(walk), (s[:t], symbol, walk)
        assert reber.legal_next(s) == frozenset()


@pytest.mark.parametrize(
    ("prefix", "match"),
    [
        ("T", "must start with 'B'"),
        ("BX", "position 1 of 'BX' must be T or P"),
        ("BTBS", r"symbol 'S' at position 3 of 'BTBS'; allowed there: TP"),
        ("BTBTXE", r"symbol 'E' at position 5 of 'BTBTXE'; allowed there: XS"),
        ("BTBTXSEP", r"must end the inner string with 'TE'"),
        ("BTBTXSETEE", "got 'TEE'"),
    ],
)
def test_legal_next_rejects_bad_prefixes(prefix: str, match: str) -> None:
    with pytest.raises(sc.SpecError, match=match):
        reber.legal_next(prefix)
    assert not reber.is_embedded_reber(prefix)


def test_is_embedded_reber_agrees_with_the_regex() -> None:
    rng = np.random.default_rng(1)
    alphabet = np.array(reber.SYMBOLS)
    candidates = ["", "BTBTXSET", *reber.embedded_reber_strings(50, rng=7)]
    for s in reber.embedded_reber_strings(50, rng=8):  # one symbol changed: almost always bad
        k = int(rng.integers(len(s)))
        candidates.append(s[:k] + str(rng.choice(alphabet)) + s[k + 1 :])
    candidates += ["".join(rng.choice(alphabet, size=int(n))) for n in rng.integers(9, 14, 200)]
    for s in candidates:
        assert reber.is_embedded_reber(s) == accepted(s), s


# --- encodings and tasks ------------------------------------------------------------------------


def test_encode_and_decode() -> None:
    strings = ["BTBTXSETE", "BPBPVVEPE", "BTBPTVPSETE"]
    x, lengths = reber.encode(strings)
    assert x.shape == (11, 3, 7) and x.dtype == np.float32
    np.testing.assert_array_equal(lengths, [9, 9, 11])
    np.testing.assert_array_equal(x.sum(axis=-1)[:, 0], [1] * 9 + [0] * 2)  # post padding
    assert x[0, 0].tolist() == [1, 0, 0, 0, 0, 0, 0]  # B
    assert reber.decode(x) == strings
    pre, _ = reber.encode(strings, pad="pre", dtype=np.float64)
    assert pre.dtype == np.float64
    np.testing.assert_array_equal(pre.sum(axis=-1)[:, 0], [0] * 2 + [1] * 9)
    assert reber.decode(pre) == strings
    ids = reber.symbol_ids(strings)
    assert ids[:, 1].tolist() == [0, 2, 0, 2, 5, 5, 6, 2, 6, IGNORE_INDEX, IGNORE_INDEX]
    with pytest.raises(sc.SpecError, match=r"has symbols \['Z'\] outside BTPSXVE"):
        reber.encode(["BZE"])
    with pytest.raises(TypeError, match="wrap it in a list"):
        reber.encode("BTBTXSETE")
    with pytest.raises(sc.SpecError, match="pad must be 'pre'"):
        reber.encode(strings, pad="left")


def test_classification_task() -> None:
    strings = reber.embedded_reber_strings(64, rng=9)
    data = reber.classification_data(strings)
    steps = max(len(s) for s in strings) - 2
    assert data.inputs.shape == (steps, 64, 7) and data.targets.shape == (64,)
    assert data.targets.dtype == np.int64
    assert reber.decode(data.inputs) == [s[:-2] for s in strings]  # what the classifier sees
    np.testing.assert_array_equal(data.lengths, [len(s) - 2 for s in strings])
    for s, y in zip(strings, data.targets, strict=True):
        assert reber.CLASSES[y] == s[-2] == s[1]
    assert set(data.targets.tolist()) == {0, 1}
    # front padding: the last step of every example is its inner "E"
    assert (data.inputs[-1].argmax(axis=-1) == reber.SYMBOL_INDEX["E"]).all()
    with pytest.raises(sc.SpecError, match=r"string 1 \('BTBTXSEPE'\) is not an embedded Reber"):
        reber.classification_data(["BTBTXSETE", "BTBTXSEPE"])


def test_language_model_task() -> None:
    strings = reber.embedded_reber_strings(40, rng=10)
    data = reber.language_model_data(strings)
    steps = max(len(s) for s in strings) - 1
    assert data.inputs.shape == (steps, 40, 7) and data.targets.shape == (steps, 40)
    assert data.legal.shape == (steps, 40, 7) and data.legal.dtype == bool
    assert reber.decode(data.inputs) == [s[:-1] for s in strings]
    for j, s in enumerate(strings):
        n = len(s) - 1
        assert data.lengths[j] == n
        assert [reber.SYMBOLS[i] for i in data.targets[:n, j]] == list(s[1:])
        assert (data.targets[n:, j] == IGNORE_INDEX).all()
        assert not data.legal[n:, j].any()
        for t in range(n):
            legal = {reber.SYMBOLS[i] for i in np.flatnonzero(data.legal[t, j])}
            assert legal == set(reber.legal_next(s[: t + 1]))
            assert s[t + 1] in legal


def test_prediction_scoring() -> None:
    data = reber.language_model_data(reber.embedded_reber_strings(30, rng=11))
    legal = data.legal
    perfect = np.where(legal, 0.0, -10.0)  # equal mass on every legal symbol
    assert reber.language_model_accuracy(perfect, legal) == (1.0, 1.0)
    assert reber.language_model_accuracy(perfect, legal, threshold=0.3) == (1.0, 1.0)
    assert not reber.prediction_correct(perfect, legal)[~legal.any(-1)].any()  # padding: False

    always_b = np.zeros_like(perfect)
    always_b[..., reber.SYMBOL_INDEX["B"]] = 5.0
    correct = reber.prediction_correct(always_b, legal)
    np.testing.assert_array_equal(correct, legal[..., reber.SYMBOL_INDEX["B"]])
    step_acc, string_acc = reber.language_model_accuracy(always_b, legal)
    assert 0 < step_acc < 1 and string_acc == 0.0

    # the threshold rule: one illegal symbol above it spoils a step whose argmax is legal
    leaky = perfect.copy()
    leaky[0, :, reber.SYMBOL_INDEX["E"]] = -0.5  # "E" never follows "B"
    assert reber.prediction_correct(leaky, legal)[0].all()
    assert not reber.prediction_correct(leaky, legal, threshold=0.2)[0].any()
    # p(T) = p(P) = 0.38, p(E) = 0.23: above 0.3 only legal symbols; above 0.4 none at all
    assert reber.prediction_correct(leaky, legal, threshold=0.3)[0].all()
    assert not reber.prediction_correct(leaky, legal, threshold=0.4)[0].any()
    with pytest.raises(sc.ShapeError, match="must have one shape"):
        reber.prediction_correct(perfect[:-1], legal)
    with pytest.raises(sc.SpecError, match=r"threshold must be in \[0, 1\)"):
        reber.prediction_correct(perfect, legal, threshold=1.5)
