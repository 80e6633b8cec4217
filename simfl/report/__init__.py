"""Comparison reports over a sweep's cells: tables (Markdown, CSV, W&B) and plots (HTML)."""
