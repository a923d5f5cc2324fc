"""Runs: a server variant under load for one measured window, and the matrix of runs of a bench."""
