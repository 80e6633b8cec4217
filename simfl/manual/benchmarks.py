"""The benchmarks pages: every dated record, rendered; nothing typed by hand.

Two kinds of record exist: ``bench/results/*.json``, appended by ``simfl bench W --record``
(date, commit, machine, command, figures), and ``bench/records/*.md``, a dated write-up of a
measurement that needed more than one command (its date, commit, machine and commands at its
top). Both are rendered into ``docs/benchmarks/``; a new measurement is a new record, and the
pages follow.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any


def _flat(figures: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in figures.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows += _flat(value, f"{name} / ")
        else:
            rows.append((name, value))
    return rows


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    text = " ".join(str(value).split())
    return text.replace("|", "\\|")


def _machine(machine: dict[str, Any]) -> str:
    gpu = f", {machine['gpu']}" if machine.get("gpu") else ", no GPU"
    return f"{machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB{gpu}"


def render_json_record(record: dict[str, Any]) -> list[str]:
    """One ``simfl bench --record`` record as a page section."""
    lines = [
        f"## {record['workload']}: {record['date']}",
        "",
        f"- commit: `{record['commit'][:10]}`"
        + (" (with uncommitted changes)" if record.get("uncommitted_changes") else ""),
        f"- machine: {_machine(record['machine'])}",
        f"- command: `{record['command']}`",
        "",
    ]
    figures = record["figures"]
    if set(figures) == {"output"}:
        return lines + ["```text", figures["output"].rstrip(), "```", ""]
    lines += ["| figure | value |", "| --- | --- |"]
    lines += [f"| {name} | {_value(value)} |" for name, value in _flat(figures)]
    return lines + [""]


def _title(markdown: Path) -> str:
    first = markdown.read_text().splitlines()[0]
    return first.lstrip("# ").strip()


def render(bench_dir: Path, out_dir: Path) -> None:
    """Write ``out_dir/index.md`` and a page per write-up (with its pictures) from ``bench_dir``."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    (out_dir / "records").mkdir(parents=True)
    writeups = sorted((bench_dir / "records").glob("*.md"), reverse=True)
    for writeup in writeups:
        shutil.copyfile(writeup, out_dir / "records" / writeup.name)
        assets = writeup.with_suffix("")
        if assets.is_dir():
            shutil.copytree(assets, out_dir / "records" / assets.name)
    records = [json.loads(p.read_text()) for p in sorted((bench_dir / "results").glob("*.json"))]
    records.sort(key=lambda record: record["date"], reverse=True)
    lines = [
        "# Benchmarks",
        "",
        "Every figure the README and this site quote comes from one of these dated records.",
        "Only ratios measured side by side in one invocation compare code; absolute times",
        "belong to the machine named in the record. Measure again with",
        "`simfl bench WORKLOAD --record`: it appends a record, and this page is rebuilt from",
        "the records by `make docs`.",
        "",
        "## Write-ups",
        "",
    ]
    lines += [f"- [{_title(w)}](records/{w.name})" for w in writeups]
    lines += ["", "## `simfl bench` records", ""]
    if not records:
        lines += ["None yet.", ""]
    for record in records:
        lines += render_json_record(record)
    (out_dir / "index.md").write_text("\n".join(lines))
