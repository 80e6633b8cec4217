"""The site's home page is the README, its links pointed into the site: one text, not two to
keep in step."""

from __future__ import annotations

import re


def render(readme: str) -> str:
    """``README.md`` with repository paths made site paths: ``docs/...`` pages, the
    write-ups in ``bench/records/`` and the ``bench/results/`` records (rendered on the
    benchmarks page)."""
    text = re.sub(r"\]\(docs/", "](", readme)
    text = re.sub(r"\]\(bench/records/", "](benchmarks/records/", text)
    return re.sub(r"\]\(bench/results/[^)]*\)", "](benchmarks/index.md)", text)
