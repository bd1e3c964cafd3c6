"""The PyTorch source of an ``LSTMVariant``: a small ``nn.Module`` that runs the cell step by step.

No ``torch.nn`` module computes the variants, so the export writes one class per configuration:
its parameters carry the spec's names (``weight_ih_l0``, ``weight_ci_l0``, ...), its
``_direction`` method holds only the equations of the chosen variant, and ``forward`` runs the
layers and directions as ``nn.LSTM`` does (dropout between layers in training; with ``lengths``,
each example for its own steps and the reverse direction from each example's end). The class is
TorchScript-compatible and needs only ``torch`` and ``nn``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from specchain.exporters.pytorch import layout
from specchain.modules.recurrent_base import suffix
from specchain.types import TupleType, Type

BODY = layout.INDENT * 2  # a method's statements

if TYPE_CHECKING:
    from specchain.modules.lstm_variants import LSTMVariant

_WORDS = {
    "peephole": "Peephole",
    "coupled_gates": "Coupled",
    "no_forget_gate": "NoForgetGate",
    "no_input_gate": "NoInputGate",
    "no_output_gate": "NoOutputGate",
    "no_input_activation": "NoInputActivation",
    "no_output_activation": "NoOutputActivation",
    "full_gate_recurrence": "GateRecurrent",
}


def class_name(spec: LSTMVariant, with_state: bool) -> str:
    """``PeepholeCoupledLSTM``, plus the structure that changes the code (``Bi``, ``2Layers``,
    ``NoBias``, ``WithState``, ``ReturnState``)."""
    words = [_WORDS[option] for option in _WORDS if getattr(spec, option)]
    words.append("BiLSTM" if spec.bidirectional else "LSTM")
    if spec.num_layers > 1:
        words.append(f"{spec.num_layers}Layers")
    if not spec.bias:
        words.append("NoBias")
    if with_state:
        words.append("WithState")
    if spec.return_state:
        words.append("ReturnState")
    return "".join(words)


def torch_class(spec: LSTMVariant, in_type: Type) -> tuple[str, str, tuple[object, ...]]:
    """``(class name, class source, constructor arguments)`` for ``spec`` with input ``in_type``."""
    with_state = isinstance(in_type, TupleType)
    name = class_name(spec, with_state)
    variant = spec.variant
    gates = variant.gates
    lines = [
        f"class {name}(nn.Module):",
        f'    """An LSTM variant ({", ".join(spec.options_description())}), step by step.',
        "",
        "    Gates " + ", ".join(gates) + " (rows of weight_ih/weight_hh in that order):",
        *("    " + line for line in _equations(spec)),
        "    x: [T, B, I] ([B, T, I] with batch_first); output [T, B, D*H]; states",
        "    [L*D, B, H]; lengths [B] (optional) runs each example for its own steps.",
        "    The cell loops over the steps: torch.jit.trace would fix T (it warns); script it.",
        '    """',
        "",
        "    def __init__(",
        "        self, input_size: int, hidden_size: int, dropout: float, batch_first: bool",
        "    ) -> None:",
        "        super().__init__()",
        "        self.hidden_size = hidden_size",
        "        self.dropout = dropout",
        "        self.batch_first = batch_first",
        "        bound = hidden_size**-0.5",
        f"        width = {len(gates)} * hidden_size",
    ]
    for layer in range(spec.num_layers):
        size = "input_size" if layer == 0 else f"{spec.directions} * hidden_size"
        for direction in range(spec.directions):
            sfx = suffix(layer, direction)
            shapes = [
                (f"weight_ih{sfx}", f"width, {size}"),
                (f"weight_hh{sfx}", "width, hidden_size"),
            ]
            if spec.bias:
                shapes += [(f"bias_ih{sfx}", "width"), (f"bias_hh{sfx}", "width")]
            shapes += [(f"weight_c{gate}{sfx}", "hidden_size") for gate in variant.peepholes]
            if spec.full_gate_recurrence:
                sigmoid = f"{len(variant.sigmoid_gates)} * hidden_size"
                shapes.append((f"weight_gg{sfx}", f"{sigmoid}, {sigmoid}"))
            for param, shape in shapes:
                value = f"nn.Parameter(torch.empty({shape}).uniform_(-bound, bound))"
                lines += layout.assignment(f"self.{param}", value, BODY)
    lines += ["", *_forward(spec, with_state), "", *_direction(spec)]
    args = (spec.input_size, spec.hidden_size, spec.dropout, spec.batch_first)
    return name, "\n".join(lines), args


def _equations(spec: LSTMVariant) -> list[str]:
    v = spec.variant
    peep = spec.peephole
    i = "1" if v.no_input_gate else "sigmoid(z_i" + (" + w_ci * c" if peep else "") + ")"
    if v.coupled_gates:
        f = "1 - i"
    else:
        f = "1" if v.no_forget_gate else "sigmoid(z_f" + (" + w_cf * c" if peep else "") + ")"
    g = "z_g" if v.no_input_activation else "tanh(z_g)"
    o = "1" if v.no_output_gate else "sigmoid(z_o" + (" + w_co * c'" if peep else "") + ")"
    h = "o * c'" if v.no_output_activation else "o * tanh(c')"
    z = "z = W_ih x + b_ih + W_hh h + b_hh" + (
        " + W_gg a (previous gates)" if v.full_gate_recurrence else ""
    )
    return [z, f"i = {i}, f = {f}, g = {g}", f"c' = f * c + i * g, o = {o}, h' = {h}"]


def _forward(spec: LSTMVariant, with_state: bool) -> list[str]:
    state_type = "tuple[torch.Tensor, torch.Tensor]"
    out_type = f"tuple[torch.Tensor, {state_type}]" if spec.return_state else "torch.Tensor"
    args = ["self", "x: torch.Tensor"]
    if with_state:
        args.append(f"state: {state_type}")
    args.append("lengths: torch.Tensor | None = None")
    count = spec.num_layers * spec.directions
    lines = [
        *layout.bracketed("def forward(", args, f") -> {out_type}:", layout.INDENT),
        "        if torch.jit.is_tracing():",
        "            warnings.warn(",
        '                "the cell loops over the time steps: a trace fixes their number to "',
        '                f"the traced T={x.shape[0]}; script the module instead",',
        "                stacklevel=2,",
        "            )",
        "        unbatched = x.dim() == 2",
        "        if unbatched:",
        "            x = x.unsqueeze(1)",
        "        elif self.batch_first:",
        "            x = x.transpose(0, 1)",
    ]
    if with_state:
        lines += [
            "        h0, c0 = state",
            "        if unbatched:",
            "            h0, c0 = h0.unsqueeze(1), c0.unsqueeze(1)",
        ]
    else:
        lines += [
            f"        h0 = x.new_zeros({count}, x.shape[1], self.hidden_size)",
            "        c0 = h0",
        ]
    lines.append("        hs: list[torch.Tensor] = []")
    lines.append("        cs: list[torch.Tensor] = []")
    for layer in range(spec.num_layers):
        if layer > 0:
            lines.append("        x = nn.functional.dropout(x, self.dropout, self.training)")
        outs = []
        for direction in range(spec.directions):
            sfx = suffix(layer, direction)
            k = layer * spec.directions + direction
            params = [f"self.weight_ih{sfx}", f"self.weight_hh{sfx}"]
            if spec.bias:
                params.append(f"self.bias_ih{sfx} + self.bias_hh{sfx}")
            params += [f"self.weight_c{gate}{sfx}" for gate in spec.variant.peepholes]
            if spec.full_gate_recurrence:
                params.append(f"self.weight_gg{sfx}")
            source = "self._reverse(x, lengths)" if direction else "x"
            call = [source, f"h0[{k}]", f"c0[{k}]", "lengths", *params]
            lines += layout.call(f"y{direction}, h, c", "self._direction", call, BODY)
            lines += ["        hs.append(h)", "        cs.append(c)"]
            outs.append(f"self._reverse(y{direction}, lengths)" if direction else f"y{direction}")
        lines.append(
            f"        x = torch.cat([{', '.join(outs)}], 2)" if len(outs) > 1 else "        x = y0"
        )
    lines += [
        "        h_n, c_n = torch.stack(hs), torch.stack(cs)",
        "        if unbatched:",
        "            x, h_n, c_n = x.squeeze(1), h_n.squeeze(1), c_n.squeeze(1)",
        "        elif self.batch_first:",
        "            x = x.transpose(0, 1)",
        "        return (x, (h_n, c_n))" if spec.return_state else "        return x",
    ]
    if spec.bidirectional:
        lines += [
            "",
            *layout.bracketed(
                "def _reverse(",
                ["self", "x: torch.Tensor", "lengths: torch.Tensor | None"],
                ") -> torch.Tensor:",
                layout.INDENT,
            ),
            '        """Each sequence backwards within its length (padding stays in place)."""',
            "        if lengths is None:",
            "            return torch.flip(x, [0])",
            "        steps = torch.arange(x.shape[0], device=x.device).unsqueeze(1)",
            "        ends = lengths.to(x.device).unsqueeze(0)",
            "        order = torch.where(steps < ends, ends - 1 - steps, steps)",
            "        return x.gather(0, order.unsqueeze(2).expand_as(x))",
        ]
    return lines


def _direction(spec: LSTMVariant) -> list[str]:
    v = spec.variant
    gates = v.gates
    params = ["w_ih: torch.Tensor", "w_hh: torch.Tensor"]
    if spec.bias:
        params.append("bias: torch.Tensor")
    params += [f"w_c{gate}: torch.Tensor" for gate in v.peepholes]
    if spec.full_gate_recurrence:
        params.append("w_gg: torch.Tensor")
    sigmoid = ", ".join(v.sigmoid_gates)
    lines = [
        "    def _direction(",
        "        self,",
        "        x: torch.Tensor,",
        "        h: torch.Tensor,",
        "        c: torch.Tensor,",
        "        lengths: torch.Tensor | None,",
        *(f"        {p}," for p in params),
        "    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:",
        '        """One layer, one direction over x [T, B, F] from h, c [B, H]."""',
        "        projected = x @ w_ih.t()" + (" + bias" if spec.bias else ""),
        "        outputs: list[torch.Tensor] = []",
    ]
    if spec.full_gate_recurrence:
        size = len(v.sigmoid_gates)
        lines.append(f"        previous = x.new_zeros(x.shape[1], {size} * self.hidden_size)")
    lines += [
        "        for t in range(x.shape[0]):",
        "            z = projected[t] + h @ w_hh.t()",
    ]
    if spec.full_gate_recurrence:
        lines.append(f"            z_{'_'.join(v.sigmoid_gates)} = previous @ w_gg.t()")
    if len(gates) > 1:
        lines.append(f"            {', '.join('z_' + g for g in gates)} = z.chunk({len(gates)}, 1)")
    else:
        lines.append("            z_g = z")
    if spec.full_gate_recurrence:
        together = f"z_{'_'.join(v.sigmoid_gates)}"
        if len(v.sigmoid_gates) > 1:
            together += f".chunk({len(v.sigmoid_gates)}, 1)"
        lines.append(f"            {', '.join('r_' + g for g in v.sigmoid_gates)} = {together}")

    def gate_line(gate: str, cell: str) -> str:
        terms = [f"z_{gate}"]
        if spec.full_gate_recurrence:
            terms.append(f"r_{gate}")
        if gate in v.peepholes:
            terms.append(f"w_c{gate} * {cell}")
        return f"            {gate} = torch.sigmoid({' + '.join(terms)})"

    if "i" in gates:
        lines.append(gate_line("i", "c"))
    if "f" in gates:
        lines.append(gate_line("f", "c"))
    lines.append(
        "            g = z_g" if v.no_input_activation else "            g = torch.tanh(z_g)"
    )
    i = "i" if "i" in gates else None
    f_expr = "(1 - i)" if v.coupled_gates else ("f" if "f" in gates else None)
    c_terms = [f"{f_expr} * c" if f_expr else "c", f"{i} * g" if i else "g"]
    lines.append(f"            c_new = {' + '.join(c_terms)}")
    if "o" in gates:
        lines.append(gate_line("o", "c_new"))
    squash = "c_new" if v.no_output_activation else "torch.tanh(c_new)"
    lines.append(
        f"            h_new = o * {squash}" if "o" in gates else f"            h_new = {squash}"
    )
    lines += [
        "            if lengths is None:",
        "                h, c = h_new, c_new",
        "                outputs.append(h_new)",
        "            else:",
        "                active = (t < lengths).to(x.device).unsqueeze(1)",
        "                h = torch.where(active, h_new, h)",
        "                c = torch.where(active, c_new, c)",
        "                outputs.append(torch.where(active, h_new, torch.zeros_like(h_new)))",
    ]
    if spec.full_gate_recurrence:
        lines.append(f"            previous = torch.cat([{sigmoid}], 1)")
    lines.append("        return torch.stack(outputs), h, c")
    return lines
