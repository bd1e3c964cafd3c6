"""``summary``: a table of a chain's nodes, like Keras' ``model.summary()``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from specchain.graph import INPUT
from specchain.inputs import argument_inputs

if TYPE_CHECKING:
    from specchain.chain import SpecChain


def summary(chain: SpecChain) -> str:
    """Columns: node, kind (with key hyper-parameters), input type, output type, parameters.
    The model's named inputs (``Input`` nodes taking its input) come first, in argument order;
    a row ``(input)`` stands for the input when other nodes take it too."""
    header = ("node", "kind", "input", "output", "params")
    named = sorted(argument_inputs(chain).items(), key=lambda item: item[1] or 0)
    inputs = [node for node, _ in named]  # the model's named inputs come first, in order
    rows = []
    if not set(chain.graph.successors(INPUT)) <= set(inputs):
        rows.append(("(input)", "", "", str(chain.in_type), ""))
    owners = {node for node, _ in chain.parameter_owners().values()}
    counted: set[int] = set()
    for node in [*inputs, *(n for n in chain.nodes if n not in inputs)]:
        spec = chain.spec(node)
        details = spec.describe()
        kind = f"{spec.kind}({details})" if details else spec.kind
        count = f"{spec.num_params:,}"
        if spec.params and (node not in owners or id(spec.params) in counted):
            count = f"shared ({spec.num_params:,})"
        counted.add(id(spec.params))
        data = chain.graph.nodes[node]
        rows.append((node, kind, str(data["in_type"]), str(data["out_type"]), count))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=False)).rstrip()

    rule = "-" * len(line(tuple("-" * w for w in widths)))
    total = chain.num_params
    return "\n".join(
        [
            line(header),
            rule,
            *(line(r) for r in rows),
            rule,
            f"total parameters: {total:,}",
            f"{INPUT[1:-1]}: {chain.in_type}  ->  output: {chain.out_type}",
        ]
    )
