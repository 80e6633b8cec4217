"""Rich tables of a split: one row per client, and the whole-split scores (``simfl partition``)."""

from __future__ import annotations

import math

import pandas as pd
from rich import box
from rich.table import Table

COLUMNS = {  # client-table column -> (header, format)
    "client": ("client", "{:d}"),
    "size": ("size", "{:d}"),
    "num_labels": ("labels", "{:d}"),
    "effective_labels": ("eff. labels", "{:.2f}"),
    "label_js": ("JS", "{:.3f}"),
    "num_speakers": ("speakers", "{:d}"),
    "num_accents": ("accents", "{:d}"),
    "main_accent": ("main accent", "{}"),
    "feature_distance": ("feat. dist", "{:.3f}"),
    "cond:snr_db": ("SNR dB", "{:.1f}"),
    "cond:highpass_hz": ("HP Hz", "{:.0f}"),
    "cond:lowpass_hz": ("LP Hz", "{:.0f}"),
    "cond:gain_db": ("gain dB", "{:+.1f}"),
    "cond:speed": ("speed", "{:.3f}"),
    "cond:rt60_s": ("RT60 s", "{:.2f}"),
}


def _cell(value, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return fmt.format(int(value) if fmt.endswith("d}") else value)


def _top_labels(row: pd.Series, label_columns: list[str], count: int = 3) -> str:
    total = max(int(row["size"]), 1)
    top = sorted(label_columns, key=lambda c: -row[c])[:count]
    return ", ".join(f"{c[6:]} {row[c] / total:.0%}" for c in top if row[c] > 0)


def clients_tables(clients: pd.DataFrame, title: str = "clients") -> list[Table]:
    """Statistics per client, and (for feature shift) each client's recording condition."""
    stats = [c for c in COLUMNS if c in clients and not c.startswith("cond:")]
    conditions = [c for c in COLUMNS if c in clients and c.startswith("cond:")]
    label_columns = [c for c in clients if c.startswith("label:")]
    tables = [_table(clients, stats, title, lambda row: _top_labels(row, label_columns))]
    if conditions:
        tables.append(_table(clients, ["client", *conditions], "recording condition", None))
    return tables


def _table(clients: pd.DataFrame, columns: list[str], title: str, extra) -> Table:
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1))
    for column in columns:
        header = COLUMNS[column][0]
        justify = "left" if column == "main_accent" else "right"
        table.add_column(header, justify=justify, no_wrap=True, min_width=max(len(header), 5))
    if extra is not None:
        table.add_column("top labels", ratio=1)
    for _, row in clients.iterrows():
        cells = [_cell(row[c], COLUMNS[c][1]) for c in columns]
        table.add_row(*cells, *([extra(row)] if extra is not None else []))
    return table


def scores_table(scores: dict[str, float], title: str = "heterogeneity") -> Table:
    table = Table(title=title, title_justify="left", show_header=False)
    for key, value in scores.items():
        table.add_row(key, f"{value:.4g}")
    return table
