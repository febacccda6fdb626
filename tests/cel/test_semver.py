"""Semver parsing and precedence follow blang/semver as Kubernetes uses it."""

from __future__ import annotations

import pytest
from modelplane.cel.semver import SemverError, is_semver, parse_semver


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("1.0.0", "2.0.0"),
        ("1.0.0-alpha", "1.0.0"),
        ("1.0.0-alpha", "1.0.0-alpha.1"),
        ("1.0.0-alpha.1", "1.0.0-alpha.beta"),
        ("1.0.0-beta.2", "1.0.0-beta.11"),
        ("8.9.0", "9.0.0"),
    ],
)
def test_precedence_follows_semver_2(lower: str, higher: str) -> None:
    assert parse_semver(lower) < parse_semver(higher)


def test_build_metadata_is_ignored_by_equality() -> None:
    assert parse_semver("1.2.3+a") == parse_semver("1.2.3+b")


@pytest.mark.parametrize("text", ["v1.0.0", "1.0", "01.0.0", "1.0.0-", "1.0.0-01", "1.0.0+"])
def test_strict_parse_rejects(text: str) -> None:
    with pytest.raises(SemverError):
        parse_semver(text)


@pytest.mark.parametrize(("text", "expected"), [("v1", "1.0.0"), ("01.02", "1.2.0"),
                                                ("v1.2.3-rc.1", "1.2.3-rc.1")])
def test_normalize_pads_and_strips(text: str, expected: str) -> None:
    assert str(parse_semver(text, normalize=True)) == expected
    assert is_semver(text, True) and not is_semver(text)
