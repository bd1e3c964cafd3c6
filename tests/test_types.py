"""Types on the edges: TensorType / TupleType construction and printing, DimEnv unification."""

from __future__ import annotations

import re

import numpy as np
import pytest

import specchain as sc
from specchain.types import ANY, DimEnv, ShapeError, TensorType, TupleType, type_of

# --- construction and printing -----------------------------------------------------------------


def test_tensor_type_str_and_repr() -> None:
    t = TensorType(("T", "B", 8))
    assert str(t) == "[T, B, 8]"
    assert repr(t) == "TensorType(T, B, 8)"
    assert t.dims == ("T", "B", 8)
    assert t.dtype == "float"
    assert t.rank == 3
    assert not t.variadic


def test_int_tensor_type_is_marked() -> None:
    t = TensorType(("T", "B"), "int")
    assert str(t) == "int[T, B]"
    assert repr(t) == "TensorType(T, B, dtype=int)"
    assert t != TensorType(("T", "B"))


def test_variadic_tensor_type() -> None:
    t = TensorType(("...", 8))
    assert str(t) == "[..., 8]"
    assert repr(t) == "TensorType(..., 8)"
    assert t.variadic
    assert t.rank is None


def test_scalar_tensor_type() -> None:
    t = TensorType(())
    assert str(t) == "[]"
    assert t.rank == 0
    assert not t.variadic


def test_dims_are_stored_as_a_tuple_and_types_compare_by_value() -> None:
    t = TensorType(["T", 4])  # any iterable of dims
    assert t.dims == ("T", 4)
    assert t == TensorType(("T", 4))
    assert hash(t) == hash(TensorType(("T", 4)))
    assert t.with_dims(("T", 5)) == TensorType(("T", 5))


def test_tuple_type_str_and_repr() -> None:
    t = TupleType([TensorType(("T", "B", 8)), TensorType(("B",), "int")])
    assert str(t) == "([T, B, 8], int[B])"
    assert repr(t) == "TupleType(TensorType(T, B, 8), TensorType(B, dtype=int))"
    assert len(t.items) == 2


def test_tuple_type_names_label_items_but_do_not_change_equality() -> None:
    items = [TensorType(("T", "B", 4)), TensorType(("B", 4))]
    named = TupleType(items, names=("output", "h_n"))
    assert str(named) == "(output: [T, B, 4], h_n: [B, 4])"
    assert named == TupleType(items)


def test_tuple_type_names_must_match_items() -> None:
    with pytest.raises(ShapeError, match="TupleType has 1 items but 2 names"):
        TupleType([TensorType((1,))], names=("a", "b"))


def test_any_prints_as_any() -> None:
    assert str(ANY) == "any"
    assert repr(ANY) == "ANY"


def test_type_of_arrays_and_tuples() -> None:
    value = (np.zeros((2, 3)), np.zeros(4, dtype=np.int64))
    assert type_of(value) == TupleType([TensorType((2, 3)), TensorType((4,), "int")])
    assert type_of(np.zeros((), dtype=np.float32)) == TensorType(())


def test_type_of_refuses_lists_and_says_how_to_fix() -> None:
    with pytest.raises(TypeError, match=r"got list; convert it with np\.asarray"):
        type_of([1.0, 2.0])


# --- bad dims ---------------------------------------------------------------------------------


def test_negative_dim_is_refused() -> None:
    with pytest.raises(ShapeError, match="a dim must be >= 0, got -1"):
        TensorType((4, -1))


@pytest.mark.parametrize("dim", [True, False, 1.5, None, np.float64(2.0)])
def test_non_int_non_symbol_dims_are_refused(dim: object) -> None:
    with pytest.raises(TypeError, match="a dim must be an int or a symbol string"):
        TensorType((dim,))


def test_empty_symbol_is_refused() -> None:
    with pytest.raises(ShapeError, match="non-empty name"):
        TensorType(("T", ""))


@pytest.mark.parametrize("dims", [(8, "..."), ("T", "...", 8), ("...", "...")])
def test_ellipsis_only_first(dims: tuple[object, ...]) -> None:
    with pytest.raises(ShapeError, match=re.escape("'...' may only stand first")):
        TensorType(dims)


def test_unknown_dtype_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="dtype"):
        TensorType((1,), "complex")


def test_errors_are_spec_errors() -> None:
    assert issubclass(ShapeError, sc.SpecError)
    assert issubclass(sc.SpecError, ValueError)


# --- DimEnv: symbols --------------------------------------------------------------------------


def test_symbol_binds_to_a_size_both_ways() -> None:
    dims = DimEnv()
    assert dims.equal("T", 5) == 5
    assert dims.resolve("T") == 5
    assert dims.equal(5, "T") == 5
    assert dims.equal("U", "T") == 5  # U -> T -> 5
    assert dims.resolve("U") == 5


def test_symbol_chain_resolves_transitively() -> None:
    dims = DimEnv()
    dims.equal("A", "B")
    dims.equal("B", 3)
    assert dims.resolve("A") == 3
    assert dims.apply(TensorType(("A", "B", "C"))) == TensorType((3, 3, "C"))


def test_bound_symbol_conflict_names_both_values() -> None:
    dims = DimEnv()
    dims.equal("T", 5)
    with pytest.raises(ShapeError, match=r"^dim 0 5 != 6$"):
        dims.equal("T", 6, "dim 0")


def test_conflict_at_call_time_says_expected_and_got() -> None:
    with pytest.raises(ShapeError, match=r"^feature size: expected 8, got 9$"):
        DimEnv(at_call=True).equal(9, 8, "feature size")


def test_unify_binds_symbols_across_dims() -> None:
    dims = DimEnv()
    out = dims.unify(TensorType(("N", "M", 8)), TensorType(("K", "K", 8)))
    assert out == TensorType(("K", "K", 8))
    assert dims.resolve("N") == "K" and dims.resolve("M") == "K"


def test_axes_of_different_roles_never_unify() -> None:
    with pytest.raises(ShapeError, match=r"^dim 1: the batch axis B cannot be the time axis T "):
        DimEnv().unify(TensorType(("T", "B", 8)), TensorType(("S", "T", 8)))


def test_a_size_symbol_takes_the_role_it_meets() -> None:
    dims = DimEnv()
    assert dims.equal("N", "T") == "T" and dims.equal("B", "M") == "B"
    assert (dims.resolve("N"), dims.resolve("M")) == ("T", "B")
    with pytest.raises(ShapeError, match="the time axis T cannot be the batch axis B"):
        dims.equal("N", "M")


def test_unify_repeated_symbol_must_be_consistent() -> None:
    with pytest.raises(ShapeError, match="3 != 2"):
        DimEnv().unify(TensorType((2, 3)), TensorType(("S", "S")))


def test_unify_rank_mismatch_shows_both_types() -> None:
    with pytest.raises(ShapeError, match=r"rank 2 != 3 \(\[3, 8\] vs \[T, B, 8\]\)"):
        DimEnv().unify(TensorType((3, 8)), TensorType(("T", "B", 8)))


def test_unify_dtype_mismatch() -> None:
    with pytest.raises(ShapeError, match="dtype float != int"):
        DimEnv().unify(TensorType((2,)), TensorType((2,), "int"))


def test_unify_feature_size_conflict_names_both_sizes() -> None:
    with pytest.raises(ShapeError, match="feature size 16 != 32"):
        DimEnv().unify(TensorType(("T", "B", 16)), TensorType(("T", "B", 32)))


# --- DimEnv: leading "..." ------------------------------------------------------------------


def test_ellipsis_absorbs_leading_dims() -> None:
    dims = DimEnv()
    assert dims.unify(TensorType((3, 4, 8)), TensorType(("...", 8))) == TensorType((3, 4, 8))
    assert dims.prefix == (3, 4)


def test_ellipsis_keeps_symbols_of_the_concrete_side() -> None:
    dims = DimEnv()
    assert dims.unify(TensorType(("T", "B", 8)), TensorType(("...", 8))) == TensorType(
        ("T", "B", 8)
    )
    assert dims.prefix == ("T", "B")


def test_ellipsis_on_both_sides_keeps_the_longer_suffix() -> None:
    out = DimEnv().unify(TensorType(("...", 3, 8)), TensorType(("...", "F")))
    assert out == TensorType(("...", 3, 8))


def test_ellipsis_alone_matches_any_rank() -> None:
    assert DimEnv().unify(TensorType(("...",)), TensorType((2, 3))) == TensorType((2, 3))
    assert DimEnv().unify(TensorType(()), TensorType(("...",))) == TensorType(())


def test_ellipsis_needs_the_fixed_suffix() -> None:
    with pytest.raises(ShapeError, match=r"rank too small \(\[8\] vs \[\.\.\., 4, 8\]\)"):
        DimEnv().unify(TensorType((8,)), TensorType(("...", 4, 8)))


def test_ellipsis_suffix_sizes_still_checked() -> None:
    with pytest.raises(ShapeError, match="feature size 9 != 8"):
        DimEnv().unify(TensorType((3, 9)), TensorType(("...", 8)))


# --- DimEnv: tuples and ANY -------------------------------------------------------------------


def test_any_unifies_with_everything() -> None:
    t = TensorType(("T", "B", 8))
    assert DimEnv().unify(ANY, t) == t
    assert DimEnv().unify(t, ANY) == t


def test_tuples_unify_item_by_item() -> None:
    dims = DimEnv()
    out = dims.unify(
        TupleType([TensorType(("T", 4)), ANY]),
        TupleType([TensorType((5, 4)), TensorType(("T",), "int")]),
    )
    assert out == TupleType([TensorType((5, 4)), TensorType(("T",), "int")])
    assert dims.apply(out) == TupleType([TensorType((5, 4)), TensorType((5,), "int")])


def test_tuple_against_tensor_is_refused() -> None:
    t = TensorType((2,))
    with pytest.raises(ShapeError, match="a tuple and a single tensor do not match"):
        DimEnv().unify(TupleType([t]), t)


def test_tuple_length_mismatch() -> None:
    t = TensorType((2,))
    with pytest.raises(ShapeError, match="tuple of 1 != tuple of 2"):
        DimEnv().unify(TupleType([t]), TupleType([t, t]))


def test_apply_keeps_names_and_leaves_unbound_symbols() -> None:
    dims = DimEnv()
    dims.equal("B", 2)
    t = TupleType([TensorType(("T", "B")), TensorType(("B",))], names=("out", "h"))
    applied = dims.apply(t)
    assert isinstance(applied, TupleType)
    assert applied.names == ("out", "h")
    assert applied == TupleType([TensorType(("T", 2)), TensorType((2,))])
