"""``specchain.data.text``: vocabularies from a string or a file, encode/decode round trips,
language-model chunks with shifted targets, padded batches that models and ``fit`` take."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import specchain as sc
from specchain.data import IGNORE_INDEX
from specchain.data.text import Vocab, lm_data, pad_sequences
from specchain.models import zoo
from specchain.modules import LSTM, Embedding, Linear
from specchain.optim import Adam
from specchain.padded import Padded
from specchain.train import accuracy, evaluate, fit

TEXT = "the cat sat on the mat. the end!"


def test_char_vocab_orders_specials_then_by_frequency() -> None:
    vocab = Vocab.chars("abbccc")
    assert vocab.tokens == ("<pad>", "<unk>", "c", "b", "a")
    assert (vocab.pad_id, vocab.unk_id, len(vocab)) == (0, 1, 5)
    tie = Vocab.chars("ba", pad=None, unk=None)  # ties in sorted order
    assert tie.tokens == ("a", "b") and tie.pad_id is None and tie.unk_id is None


def test_word_vocab_splits_words_and_punctuation() -> None:
    vocab = Vocab.words(TEXT)
    assert vocab.tokenize("The mat!") == ["The", "mat", "!"]
    assert vocab.tokens[:3] == ("<pad>", "<unk>", "the")
    ids = vocab.encode("the mat .")
    assert ids.dtype == np.int64 and vocab.decode(ids) == "the mat ."
    assert vocab.decode(vocab.encode("the dog")) == "the <unk>"
    lowered = Vocab.words("The THE the", lower=True)
    assert lowered.tokens == ("<pad>", "<unk>", "the") and lowered.encode("THE").tolist() == [2]


def test_vocab_from_a_file_equals_the_vocab_of_its_text(tmp_path: Path) -> None:
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT + "\néé", encoding="utf-8")
    assert Vocab.chars(path) == Vocab.chars(TEXT + "\néé")
    assert Vocab.words(path, min_count=2) == Vocab.words(TEXT + "\néé", min_count=2)
    with pytest.raises(TypeError, match=r"source must be a text \(str\) or a file path"):
        Vocab.chars(b"bytes")  # type: ignore[arg-type]


def test_min_count_and_max_size_keep_the_frequent_tokens() -> None:
    assert Vocab.chars("aaabbc", min_count=2).tokens == ("<pad>", "<unk>", "a", "b")
    assert Vocab.chars("aaabbc", max_size=1).tokens == ("<pad>", "<unk>", "a")
    assert Vocab.chars("aaabbc", max_size=1).encode("abc").tolist() == [2, 1, 1]


@given(st.text(min_size=1, max_size=60))
def test_char_round_trip(text: str) -> None:
    vocab = Vocab.chars(text, pad="<pad>", unk="<unk>")
    assert vocab.decode(vocab.encode(text)) == text


@given(st.text(max_size=80))
def test_word_round_trip_is_the_tokens_joined_by_spaces(text: str) -> None:
    vocab = Vocab.words(text + " x")
    assert vocab.decode(vocab.encode(text)) == " ".join(vocab.tokenize(text))


def test_decode_skips_padding_unless_asked() -> None:
    vocab = Vocab.chars("ab")
    assert vocab.decode([2, 0, 3, 0]) == "ab"
    assert vocab.decode(np.array([2, 0]), skip_pad=False) == "a<pad>"


def test_vocab_errors_name_the_fix() -> None:
    strict = Vocab.chars("ab", unk=None)
    with pytest.raises(sc.SpecError, match=r"'z' is not in the vocabulary.*unk='<unk>'"):
        strict.encode("abz")
    with pytest.raises(sc.SpecError, match=r"special token '<' is also a token.*pad=\.\.\."):
        Vocab.chars("a<b", pad="<")
    with pytest.raises(sc.SpecError, match="pad and unk are both '#'"):
        Vocab.chars("ab", pad="#", unk="#")
    with pytest.raises(sc.SpecError, match=r"Vocab\.level must be 'char' or 'word', got 'byte'"):
        Vocab.build("ab", level="byte")
    with pytest.raises(sc.SpecError, match=r"id 9 at position 1 is out of range \[0, 4\)"):
        Vocab.chars("ab").decode([2, 9])
    with pytest.raises(sc.ShapeError, match=r"decode each column.*vocab\.decode\(batch\[:, b\]\)"):
        Vocab.chars("ab").decode(np.zeros((2, 2), np.int64))
    with pytest.raises(sc.SpecError, match="encode_batch pads with the padding token"):
        Vocab.chars("ab", pad=None).encode_batch(["ab"])
    with pytest.raises(sc.SpecError, match="'a' twice"):
        Vocab(["a", "b", "a"])


# --- language-model chunks --------------------------------------------------------------------


def test_lm_data_chunks_with_targets_shifted_by_one() -> None:
    ids = np.arange(11)
    data = lm_data(ids, steps=4)
    assert data.inputs.shape == (4, 2) and data.inputs.dtype == np.int64
    np.testing.assert_array_equal(data.inputs.T, [[0, 1, 2, 3], [4, 5, 6, 7]])
    np.testing.assert_array_equal(data.targets, data.inputs + 1)
    np.testing.assert_array_equal(data.lengths, [4, 4])
    overlapping = lm_data(ids, steps=4, stride=2)
    np.testing.assert_array_equal(overlapping.inputs[0], [0, 2, 4, 6])
    np.testing.assert_array_equal(overlapping.targets[:, -1], [7, 8, 9, 10])


def test_lm_data_errors() -> None:
    with pytest.raises(sc.ShapeError, match=r"5 tokens make no chunk of steps=5.*smaller steps="):
        lm_data(np.arange(5), steps=5)
    with pytest.raises(TypeError, match="ids must be an integer numpy array"):
        lm_data(np.zeros(8), steps=2)
    with pytest.raises(sc.ShapeError, match=r"one token stream \[N\], got \[2, 4\]"):
        lm_data(np.zeros((2, 4), np.int64), steps=2)


def test_a_char_lm_trains_on_lm_data() -> None:
    text = "abcabcabcabcabcabcabcabcabcabcabcabc" * 4
    vocab = Vocab.chars(text)
    data = lm_data(vocab.encode(text), steps=12, stride=3)
    model = zoo.language_model(len(vocab), 16)
    before = evaluate(model, data.inputs, data.targets, sc.losses.cross_entropy)
    fit(model, data, sc.losses.cross_entropy, Adam(model, lr=0.05), epochs=15, progress=False)
    after = evaluate(model, data.inputs, data.targets, sc.losses.cross_entropy)
    assert after < 0.2 * before, (before, after)


# --- padded batches ---------------------------------------------------------------------------


def test_pad_sequences_is_a_time_major_padded_batch() -> None:
    batch = pad_sequences([[1, 2, 3], [4], [5, 6]])
    assert isinstance(batch, Padded) and batch.data.shape == (3, 3)
    np.testing.assert_array_equal(batch.data, [[1, 4, 5], [2, 0, 6], [3, 0, 0]])
    np.testing.assert_array_equal(batch.lengths, [3, 1, 2])
    features = pad_sequences([np.ones((2, 5)), np.ones((4, 5))], value=-1.0)
    assert features.data.shape == (4, 2, 5) and (features.data[2:, 0] == -1).all()


def test_pad_sequences_errors() -> None:
    with pytest.raises(sc.ShapeError, match=r"sequence 1 is empty .*drop it"):
        pad_sequences([[1], []])
    with pytest.raises(sc.ShapeError, match=r"sequence 1 has steps of shape \[3\]"):
        pad_sequences([np.ones((2, 2)), np.ones((2, 3))])
    with pytest.raises(sc.ShapeError, match="got no sequences"):
        pad_sequences([])


def test_a_padded_batch_equals_each_example_alone() -> None:
    vocab = Vocab.words(TEXT)
    texts = ["the cat sat", "the end !", "mat"]
    batch = vocab.encode_batch(texts)
    np.testing.assert_array_equal(batch.lengths, [3, 3, 1])
    model = zoo.language_model(len(vocab), 8).to(np.float64)
    out = model(batch)
    for b, text in enumerate(texts):
        alone = model(vocab.encode(text)[:, None])[:, 0]
        np.testing.assert_allclose(out.data[: len(alone), b], alone, rtol=1e-12, atol=1e-12)


def test_a_tagger_fits_a_padded_batch_with_ignored_targets() -> None:
    sentences = ["the cat sat", "a dog ran far", "the mat"]
    tags = [[0, 1, 2], [0, 1, 2, 3], [0, 1]]  # the tag of a word is its position
    vocab = Vocab.words(" ".join(sentences))
    x = vocab.encode_batch(sentences)
    y = pad_sequences(tags, value=IGNORE_INDEX).data
    assert y.shape == (4, 3) and (y == IGNORE_INDEX).sum() == 3
    model = Embedding(len(vocab), 8) >> LSTM(8, 16) >> Linear(16, 4)
    data = (x, y)
    fit(model, data, sc.losses.cross_entropy, Adam(model, lr=0.05), epochs=40, progress=False)
    assert accuracy(model(x).data, y, ignore_index=IGNORE_INDEX) == 1.0
