"""The fleet scheduler: a pure core (filter clusters and pools, score, assign) and its step."""
