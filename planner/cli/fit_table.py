"""Tables that fit the terminal without cutting a number.

Rich shrinks every column of a table wider than the console, numbers included ("14…"). Here
numeric columns keep the width of their widest value (a header wider than that breaks between
its words); only text columns wrap, down to a floor of ``min_text`` characters; when even that
does not fit, text columns are left out in their ``drop`` order (highest first) and the caption
says which.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rich.table import Table
from rich.text import Text

TEXT_FLOOR = 8


@dataclass(frozen=True)
class Col:
    """One column: its header, whether its cells are numbers, and when it may be left out."""

    header: str
    numeric: bool = True
    drop: int = 0  # 0: always kept; otherwise left out (highest first) when the table cannot fit
    justify: str | None = None  # default: right for numbers, left for text
    min_text: int = TEXT_FLOOR  # narrowest a text column is wrapped to, characters


def _cell_len(cell) -> int:
    text = cell if isinstance(cell, Text) else Text(str(cell))
    return max((Text(line).cell_len for line in text.plain.split("\n")), default=0)


def _words(header: str) -> list[str]:
    """Pieces a header may break between: at spaces, and after '/' or '.' ("tokens/" "s")."""
    return re.findall(r"[^ /.]+[/.]?|[/.]", header)


def _header_lines(header: str, width: int) -> str:
    """``header`` broken between its pieces into lines of at most ``width`` (a longer piece stays whole)."""
    lines: list[str] = []
    for word in _words(header):
        glue = "" if lines and lines[-1].endswith(("/", ".")) else " "
        if lines and len(lines[-1]) + len(glue) + len(word) <= width:
            lines[-1] += glue + word
        else:
            lines.append(word)
    return "\n".join(lines)


def _widths(cols: list[Col], rows: list[list]) -> list[tuple[int, int]]:
    """(narrowest, natural) width of each column's content."""
    out = []
    for i, col in enumerate(cols):
        values = max((_cell_len(r[i]) for r in rows), default=0)
        longest_word = max((len(w) for w in _words(col.header)), default=0)
        natural = max(values, len(col.header))
        if col.numeric:
            out.append((max(values, longest_word), natural))
        else:
            out.append((min(natural, max(col.min_text, longest_word)), natural))
    return out


def fitted_table(cols: list[Col], rows: list[list], width: int, *, title: str | None = None,
                 styles: list[str | None] | None = None, **table_kwargs) -> Table:
    """A rich Table of ``rows`` that fits ``width`` characters without truncating a number.

    ``table_kwargs`` go to :class:`rich.table.Table` (``show_edge=False`` and ``pad_edge`` are
    honoured in the width budget). Columns that had to be left out are named in the caption.
    """
    show_edge = table_kwargs.get("show_edge", True)
    pad_edge = table_kwargs.get("pad_edge", True)
    keep = list(range(len(cols)))
    widths = _widths(cols, rows)

    def need(idx: list[int], which: int = 0) -> int:
        n = len(idx)
        pad = 2 * n - (0 if pad_edge else 2)
        return sum(widths[i][which] for i in idx) + pad + (n - 1) + (2 if show_edge else 0)

    dropped: list[str] = []
    droppable = sorted((i for i, c in enumerate(cols) if c.drop), key=lambda i: -cols[i].drop)
    while need(keep) > width and droppable:
        i = droppable.pop(0)
        keep.remove(i)
        dropped.append(cols[i].header)
    hard = need(keep) > width  # still too wide: headers of numbers fold to their values' width
    if hard:  # narrow the numeric columns whose header is wider than their values, widest gap first
        values = {i: max(1, max((_cell_len(r[i]) for r in rows), default=1)) for i in keep if cols[i].numeric}
        while need(keep) > width:
            gaps = {i: widths[i][0] - v for i, v in values.items() if widths[i][0] > v}
            if not gaps:
                break
            i = max(gaps, key=gaps.get)
            cut = min(gaps[i], need(keep) - width)
            widths[i] = (widths[i][0] - cut, widths[i][1])
    named = [d for d in dropped if d]
    if named and "caption" not in table_kwargs:
        table_kwargs["caption"] = f"left out at {width} columns: {', '.join(named)} (a wider terminal shows them)"
    tight = need(keep, 1) > width  # natural widths do not fit: headers of numbers break between words
    table = Table(title=title, **table_kwargs)
    for i in keep:
        col, (narrow, _natural) = cols[i], widths[i]
        justify = col.justify or ("right" if col.numeric else "left")
        if col.numeric:
            header = _header_lines(col.header, narrow) if tight and len(col.header) > narrow else col.header
            if hard and any(len(line) > narrow for line in header.split("\n")):
                header = "\n".join(line[j:j + narrow] for line in header.split("\n")
                                   for j in range(0, len(line), narrow))
            table.add_column(header, justify=justify, no_wrap=True, min_width=narrow)
        else:
            table.add_column(col.header, justify=justify, overflow="fold", min_width=narrow)
    for r, row in enumerate(rows):
        table.add_row(*(row[i] for i in keep), style=styles[r] if styles else None)
    return table


__all__ = ["Col", "fitted_table"]
