"""Helpers shared by every step: names, conditions, labels, selectors, YAML/JSON output."""
