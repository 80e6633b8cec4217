"""The site's home page is the README, its links pointed into the site: one text, not two to
keep in step."""

from __future__ import annotations

import re


def render(readme: str) -> str:
    """``README.md`` with repository paths (``docs/...``, ``bench/records/...``) made site
    paths."""
    text = re.sub(r"\]\(docs/", "](", readme)
    return re.sub(r"\]\(bench/records/", "](benchmarks/records/", text)
