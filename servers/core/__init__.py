"""The recommender core: rules, store access, caches, counters and the HTTP-agnostic API (no framework imports)."""
