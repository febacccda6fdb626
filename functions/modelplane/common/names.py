"""Deterministic, valid Kubernetes names for composed objects."""

from __future__ import annotations

import hashlib
import re

DNS_LABEL_MAX = 63
_INVALID = re.compile(r"[^a-z0-9-]+")


def short_hash(*parts: str, length: int = 5) -> str:
    """A stable lowercase hex digest of the parts (same input, same name, every run)."""
    h = hashlib.sha256("\x00".join(parts).encode()).hexdigest()
    return h[:length]


def dns_label(*parts: str, max_len: int = DNS_LABEL_MAX) -> str:
    """Join parts into an RFC 1123 DNS label, shortening long names with a stable hash suffix.

    Two different inputs never share a shortened name (the suffix hashes the whole input), so
    long deployment and engine names stay unique and valid.
    """
    raw = "-".join(p for p in parts if p)
    name = _INVALID.sub("-", raw.lower()).strip("-")
    name = re.sub(r"-{2,}", "-", name) or "x"
    if len(name) <= max_len and name == raw:
        return name
    suffix = short_hash(raw, length=8)
    head = name[: max_len - len(suffix) - 1].rstrip("-")
    return f"{head}-{suffix}" if head else suffix
