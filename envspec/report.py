"""Reporters for differences, chosen by name: ``text`` (a rich table), ``json``, ``markdown``.

The JSON shape is stable: ``{"left", "right", "undeclared", "differences": [{"path", "left",
"right", "status", "reason"}]}`` where ``status`` is ``expected``, ``declared`` or
``undeclared``; secret values appear only as their reference or ``<literal secret>``.
"""

from __future__ import annotations

import io
import json
import os
import sys

from envspec.parity import Difference

_LABELS = {"expected": "expected", "declared": "declared", "undeclared": "UNDECLARED"}


def render_diff(left: str, right: str, differences: list[Difference], output_format: str) -> str:
    return _REPORTERS[output_format](left, right, differences)


def _status(difference: Difference) -> str:
    label = _LABELS[difference.status]
    return f"{label}: {difference.reason}" if difference.reason else label


def _json(left: str, right: str, differences: list[Difference]) -> str:
    payload = {
        "left": left,
        "right": right,
        "undeclared": sum(d.status == "undeclared" for d in differences),
        "differences": [d.as_dict() for d in differences],
    }
    return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"


def _markdown(left: str, right: str, differences: list[Difference]) -> str:
    def cell(text: str) -> str:
        return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")

    lines = [f"| path | {cell(left)} | {cell(right)} | status |", "|---|---|---|---|"]
    lines += [
        f"| `{cell(d.path)}` | {cell(d.left)} | {cell(d.right)} | {cell(_status(d))} |"
        for d in differences
    ]
    if not differences:
        lines.append("| | | | no differences |")
    return "\n".join(lines) + "\n"


def _text(left: str, right: str, differences: list[Difference]) -> str:
    from rich.console import Console
    from rich.table import Table

    colours = {"expected": "dim", "declared": "cyan", "undeclared": "bold red"}
    table = Table("path", left, right, "status", title=f"{left} vs {right}")
    for d in differences:
        table.add_row(d.path, d.left, d.right, _status(d), style=colours[d.status])
    buffer = io.StringIO()
    colour = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    console = Console(file=buffer, force_terminal=colour, no_color=not colour, width=160)
    console.print(table)
    undeclared = sum(d.status == "undeclared" for d in differences)
    console.print(f"{len(differences)} differences, {undeclared} undeclared")
    return buffer.getvalue()


_REPORTERS = {"text": _text, "json": _json, "markdown": _markdown}
