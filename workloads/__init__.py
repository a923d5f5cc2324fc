"""Workloads: seeded datasets, request streams, load generation and their TOML specs."""
