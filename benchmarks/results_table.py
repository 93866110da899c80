"""The Markdown table every benchmark and validation script writes beside its CSV."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd


def markdown_table(table: pd.DataFrame, fmt: Callable[[object], str] = str) -> str:
    """``table`` as a GitHub Markdown table, each value written by ``fmt``."""
    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)
