"""Report: renders the numbers analysis gives it into Markdown, a self-contained HTML page and plots."""
