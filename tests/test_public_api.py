"""The user's view pinned in design.md section 3 runs as written (names, signatures, behaviour)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def test_design_users_view(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    import specchain as sc
    from specchain.modules import LSTM, Concat, LastStep, Linear, Reverse

    sc.seed(0)
    seq2seq = LSTM(8, 32) >> Linear(32, 4)
    clf = LSTM(8, 32) >> LastStep() >> Linear(32, 3)
    bilstm = (
        sc.branch(LSTM(8, 16), Reverse() >> LSTM(8, 16) >> Reverse()) >> Concat() >> Linear(32, 4)
    )
    assert repr(seq2seq.in_type) == "TensorType(T, B, 8)"
    assert repr(seq2seq.out_type) == "TensorType(T, B, 4)"
    assert str(clf.out_type) == "[B, 3]" and str(bilstm.out_type) == "[T, B, 4]"

    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 3, 8)).astype(np.float32)
    target = rng.standard_normal((5, 3, 4)).astype(np.float32)
    assert seq2seq(x).shape == (5, 3, 4)
    y, tape = seq2seq.forward(x, train=True, rng=0)
    dx, grads = seq2seq.backward(tape, np.ones_like(y))
    assert dx.shape == x.shape
    loss, grads = seq2seq.value_and_grad(x, target, loss=sc.losses.mse)
    assert np.isfinite(loss)
    assert next(iter(seq2seq.named_parameters())) == "lstm.weight_ih_l0"
    assert "linear.weight" in grads
    seq2seq.load_state_dict(seq2seq.state_dict())
    assert "total parameters" in seq2seq.summary()
    seq2seq.save("m.safetensors")
    assert np.array_equal(sc.load("m.safetensors")(x), seq2seq(x))
    seq2seq.to(np.float64)
    assert all(p.dtype == np.float64 for p in seq2seq.named_parameters().values())

    from specchain.exporters import graphviz, pytorch

    pytorch.export(seq2seq, "out/", class_name="Seq2Seq")
    assert {p.name for p in Path("out").iterdir()} >= {
        "model.py",
        "model.safetensors",
        "test_model.py",
    }
    assert pytorch.verify(seq2seq, x.astype(np.float64)).within(rtol=1e-7, atol=1e-9)
    assert graphviz.render(seq2seq, "seq2seq.svg").is_file()

    lm = sc.models.language_model(vocab_size=50, hidden_size=64, num_layers=2, dropout=0.2)
    assert str(lm.in_type) == "int[T, B]" and str(lm.out_type) == "[T, B, 50]"


def test_named_inputs_as_the_issue_shows() -> None:
    """``sc.Input(type, name=...)``: the names type the chain and become its input's item names."""
    import specchain as sc
    from specchain.modules import LSTM

    x = sc.Input(sc.TensorType(("T", "B", 8)), name="x")
    state = sc.TensorType((1, "B", 16))
    model = sc.parallel(x, sc.Input(sc.TupleType((state, state)), name="state")) >> LSTM(8, 16)
    assert model.in_type.names == ("x", "state")  # type: ignore[union-attr]
    assert str(model.in_type) == "(x: [T, B, 8], state: ([1, B, 16], [1, B, 16]))"
