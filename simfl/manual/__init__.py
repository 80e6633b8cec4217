"""The documentation site's generated pages: references built from the code, so they cannot
drift from it (``python -m simfl.manual``; ``make docs`` runs it before ``mkdocs build``)."""
