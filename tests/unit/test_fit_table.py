"""Tables fitted to the terminal: numbers are never cut, text columns wrap or are left out."""

from __future__ import annotations

from rich.console import Console

from planner.cli.fit_table import Col, fitted_table

COLS = [Col("#"), Col("layout", numeric=False, drop=1, min_text=9), Col("step time"), Col("tokens/s"),
        Col("peak/cap GiB"), Col("note", numeric=False, drop=2)]
ROWS = [[str(i), f"tp{2 ** i} pp{i + 1} dp{64 // 2 ** i} zero{i % 4} sp interleaved-1f1b", f"{1.5 * i + 3:.2f} s",
         f"{70_000 - 1_234 * i:,}", f"{60 + i:.1f}/79.6", "wrapping words " * 3] for i in range(6)]


def _render(width: int) -> str:
    console = Console(width=width, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(fitted_table(COLS, ROWS, width, title="t", show_edge=False))
    return console.export_text()


def test_numbers_whole_at_every_width():
    for width in range(40, 220, 3):
        text = _render(width)
        assert max(len(line) for line in text.splitlines()) <= width, width
        assert "…" not in text, width
        for row in ROWS:
            for i, col in enumerate(COLS):
                if col.numeric:
                    assert row[i] in text, (width, row[i])


def test_text_columns_are_left_out_in_order_and_named():
    wide, wrapped, mid, narrow = _render(220), _render(80), _render(56), _render(46)
    assert "left out" not in wide and "interleaved-1f1b" in wide
    assert "left out" not in wrapped and "interleaved-1f" in wrapped  # both text columns wrap
    assert "left out at 56 columns: note " in mid and "layout" in mid
    assert "left out at 46 columns: note, layout" in narrow.replace("\n", " ")
