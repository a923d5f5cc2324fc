"""The asv benchmark suite of reclab (history of throughput, latency and the core's CPU paths)."""
