"""A composite spec's data flow, for diagrams that expand it: named steps and the links between
them, including the links a recurrence carries to its next step (drawn dashed).

A composite spec whose inside is not a chain of smaller specs (the attention decoder's loop
reads the encoder outputs and its own previous state at every step) describes itself with a
``data_flow()`` method returning a ``DataFlow``; ``to_dot(..., expand=True)`` draws that instead
of its ``components()``::

    DataFlow(
        steps=(Step("encoder", "LSTM(8 -> 16)", spec=encoder), Step("output", "Linear(16 -> 4)")),
        links=(Link(INPUT, "encoder", "source", "[S, B, 8]"), Link("encoder", "output", "e"),
               Link("output", OUTPUT)),
    )
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import attrs

from specchain.graph import INPUT, OUTPUT
from specchain.spec import NNModuleSpec
from specchain.types import SpecError


@attrs.frozen
class Step:
    """One box: its ``name``, ``kind`` text (``LSTM(8 -> 16)``), an optional ``note`` (small
    print: what repeats), its parameter count ``params`` (shown like a spec's), and the ``spec``
    whose family colours it (None: the composite spec's own colours)."""

    name: str
    kind: str
    note: str = ""
    params: int = 0
    spec: NNModuleSpec | None = None


@attrs.frozen
class Link:
    """An edge from ``tail`` to ``head`` (step names, or ``graph.INPUT`` / ``graph.OUTPUT``
    for the composite's input and output) carrying ``what`` of type ``type_text``. ``loop``: a
    value carried to the next time step (dashed, and not ranked: the flow reads top down)."""

    tail: str
    head: str
    what: str = ""
    type_text: str = ""
    loop: bool = False


@attrs.frozen
class DataFlow:
    """Steps in reading order and the links between them; every link names a step, the input
    or the output, and every step has a link."""

    steps: tuple[Step, ...]
    links: tuple[Link, ...]

    def __attrs_post_init__(self) -> None:
        names = [step.name for step in self.steps]
        if len(set(names)) != len(names) or INPUT in names or OUTPUT in names:
            raise SpecError(f"DataFlow step names must be unique and not {INPUT}/{OUTPUT}: {names}")
        ends = {INPUT, OUTPUT, *names}
        for link in self.links:
            if link.tail not in ends - {OUTPUT} or link.head not in ends - {INPUT}:
                raise SpecError(
                    f"DataFlow link {link.tail!r} -> {link.head!r} must go from a step or "
                    f"{INPUT} to a step or {OUTPUT}; steps are {names}"
                )
        linked = {link.tail for link in self.links} | {link.head for link in self.links}
        lonely = [name for name in names if name not in linked]
        if lonely:
            raise SpecError(f"DataFlow steps {lonely} have no link: connect them or drop them")


@runtime_checkable
class HasDataFlow(Protocol):
    """A spec that describes its inside as a ``DataFlow`` for expanded diagrams."""

    def data_flow(self) -> DataFlow: ...
