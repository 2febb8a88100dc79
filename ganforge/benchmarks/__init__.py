"""Benchmarks: commands that write JSON results and Markdown tables (kept apart from the tests)."""
