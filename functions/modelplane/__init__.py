"""Modelplane: one inference fleet over many GPU clusters, as a Crossplane package."""
