"""reclab: a benchmarking lab for Python recommender application servers (orchestration package)."""

__version__ = "0.1.0"
