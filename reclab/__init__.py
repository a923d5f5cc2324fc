"""reclab: a benchmarking lab for Python recommender application servers (orchestration package)."""

from pathlib import Path

__version__ = "0.1.0"
REPORTS = Path("reports")  # where results and reports go, relative to the working directory
