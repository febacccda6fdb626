"""Test-wide settings."""

import os

# Steps must treat required resources as read-only (the server shares converted copies across
# requests); in tests every cache hit is verified against a fresh conversion.
os.environ.setdefault("MODELPLANE_VERIFY_REQUIRED_CACHE", "1")
