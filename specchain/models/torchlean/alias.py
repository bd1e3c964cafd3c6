"""``Alias``: an earlier name of a record's field, kept as a read-only alias (``output`` for
``output_layer``, ...)."""

from __future__ import annotations

from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")


class Alias(Generic[T]):
    """A read-only alias of the field ``field``: ``record.<alias>`` is ``record.<field>``, the very
    object. Assign it in the class body without an annotation (an annotated one would be an attrs
    field), with the field's type: ``output = Alias[LinearParams]("output_layer")``. Assigning
    through it fails on the frozen records like any assignment."""

    def __init__(self, field: str) -> None:
        self.field = field
        self.__doc__ = f"The earlier name of ``{field}`` (read-only alias)."

    def __repr__(self) -> str:
        return f"Alias({self.field!r})"

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Alias[T]: ...

    @overload
    def __get__(self, obj: object, owner: type[Any]) -> T: ...

    def __get__(self, obj: object, owner: type[Any]) -> Alias[T] | T:
        if obj is None:
            return self
        value: T = getattr(obj, self.field)
        return value
