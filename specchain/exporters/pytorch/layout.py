"""How generated code is laid out so that ``ruff format --check`` (default settings, 88
columns) leaves it unchanged and ``ruff check`` finds nothing.

The rule is ruff's own, reduced to what the exporter writes: a statement that fits on one line
stays on one line; one that does not is split after its outermost opening bracket with one item
per line and a trailing comma (a "magic trailing comma", which ruff keeps at any line length).
String constants use double quotes unless that needs more escapes, as ruff prefers.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping

LINE_LENGTH = 88  # ruff's default
INDENT = "    "
_UNSAFE = re.compile(r'[^ -~]|\\|"')  # docstrings carry plain printable ASCII only


def string(text: str) -> str:
    """``text`` as a Python string literal, quoted the way ruff formats it."""
    single = repr(text)
    if single.startswith('"'):
        return single  # repr chose double quotes because the text has a single quote
    if '"' in text:
        return single  # double quotes would need escapes
    return '"' + single[1:-1].replace("\\'", "'") + '"'


def literal(value: object) -> str:
    """A constant as ruff formats it: strings double-quoted, the rest by ``repr``."""
    if isinstance(value, str):
        return string(value)
    if isinstance(value, tuple):
        items = [literal(v) for v in value]
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
    return repr(value)


def doc_text(text: str) -> str:
    """User text made safe for a docstring: anything but printable ASCII (and ``\\``, ``"``)
    becomes ``?``, so no name can end the docstring or escape from it."""
    return _UNSAFE.sub("?", text)


def bracketed(head: str, items: Iterable[str], tail: str, indent: str) -> list[str]:
    """``head item, item tail`` on one line if it fits, else one item per line (each followed
    by a comma) between ``head`` and ``tail``; ``head`` ends with the opening bracket."""
    parts = list(items)
    one_line = f"{indent}{head}{', '.join(parts)}{tail}"
    if len(one_line) <= LINE_LENGTH or not parts:
        return [one_line]
    inner = indent + INDENT
    return [f"{indent}{head}", *(f"{inner}{part}," for part in parts), f"{indent}{tail}"]


def call(target: str, function: str, arguments: Iterable[str], indent: str) -> list[str]:
    """``target = function(arguments)`` (or a bare call when ``target`` is empty)."""
    return assignment(target, f"{function}({', '.join(arguments)})", indent)


def assignment(target: str, expression: str, indent: str) -> list[str]:
    """``target = expression`` as ruff lays it out: on one line if it fits; else a call or a
    tuple split after its opening bracket, one item per line (each split again while too
    long); when even ``target = function(`` does not fit, the value goes in parentheses."""
    prefix = f"{target} = " if target else ""
    if len(f"{indent}{prefix}{expression}") <= LINE_LENGTH:
        return [f"{indent}{prefix}{expression}"]
    value = ast.parse(expression, mode="eval").body
    opener = _opener(expression, value)
    if opener is None or (target and len(f"{indent}{prefix}{opener}") > LINE_LENGTH):
        inner = _expression(expression, value, indent + INDENT, "", "")
        return [f"{indent}{prefix}(", *inner, f"{indent})"] if target else inner
    return _expression(expression, value, indent, prefix, "")


def _opener(source: str, node: ast.expr) -> str | None:
    if isinstance(node, ast.Call):
        return f"{ast.get_source_segment(source, node.func)}("
    return "(" if isinstance(node, ast.Tuple) else None


def _expression(source: str, node: ast.AST, indent: str, prefix: str, suffix: str) -> list[str]:
    text = ast.get_source_segment(source, node) or ""
    if len(f"{indent}{prefix}{text}{suffix}") <= LINE_LENGTH:
        return [f"{indent}{prefix}{text}{suffix}"]
    if isinstance(node, ast.keyword) and node.arg is not None:
        return _expression(source, node.value, indent, f"{prefix}{node.arg}=", suffix)
    opener = _opener(source, node) if isinstance(node, ast.expr) else None
    if opener is None:
        return [f"{indent}{prefix}{text}{suffix}"]  # nothing to split: ruff leaves it long
    assert isinstance(node, (ast.Call, ast.Tuple))
    items: list[ast.AST] = (
        [*node.args, *node.keywords] if isinstance(node, ast.Call) else [*node.elts]
    )
    lines = [f"{indent}{prefix}{opener}"]
    for item in items:
        lines += _expression(source, item, indent + INDENT, "", ",")
    return [*lines, f"{indent}){suffix}"]


def mapping(name: str, items: Mapping[str, str | tuple[str, ...]], comment: str = "") -> list[str]:
    """A module-level dict constant of strings (or tuples of strings), one entry per line
    (always exploded, so the file reads the same whatever its size)."""
    opener = f"{name} = {{" + (f"  # {comment}" if comment else "")
    rows = [f"{INDENT}{string(key)}: {_literal(value)}," for key, value in items.items()]
    return [opener, *rows, "}"] if rows else [f"{name}: dict[str, str] = {{}}"]


def _literal(value: str | tuple[str, ...]) -> str:
    if isinstance(value, str):
        return string(value)
    return "(" + ", ".join(string(item) for item in value) + ("," if len(value) == 1 else "") + ")"


def docstring(lines: list[str], indent: str) -> list[str]:
    """A docstring of the given lines (each already made safe), indented, closed on its own
    line when it has more than one line."""
    if len(lines) == 1 and len(indent) + len(lines[0]) + 6 <= LINE_LENGTH:
        return [f'{indent}"""{lines[0]}"""']
    body = [f"{indent}{line}" if line else "" for line in lines[1:]]
    return [f'{indent}"""{lines[0]}', *body, f'{indent}"""']


def wrap_words(text: str, width: int) -> list[str]:
    """``text`` broken at spaces into lines of at most ``width`` characters (a longer word
    keeps a line of its own)."""
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if len(candidate) <= width or not current:
            current = candidate
        else:
            lines.append(current)
            current = word
    return [*lines, current] if current else lines
