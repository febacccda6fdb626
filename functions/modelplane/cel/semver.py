"""Semantic versions as Kubernetes' CEL semver library sees them (blang/semver v4 rules).

Strict parsing follows ``semver.Parse``: exactly ``MAJOR.MINOR.PATCH`` with optional
``-prerelease`` and ``+build``, no leading zeros, no ``v`` prefix. The ``normalize`` overloads
(library version 1, Kubernetes >= 1.33) first drop a leading ``v``, pad missing minor/patch with
zeros and strip leading zeros from the numeric core, then parse strictly. Ordering follows
SemVer 2.0 precedence; build metadata is ignored by comparison and equality (blang's ``Equals``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import total_ordering
from typing import Final

__all__ = ["Semver", "SemverError", "is_semver", "parse_semver"]

_NUMBERS: Final = frozenset("0123456789")
_ALPHANUM: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")
_UINT64_MAX: Final = 2**64 - 1


class SemverError(ValueError):
    """A version string blang/semver rejects; the message is blang's."""


@total_ordering
@dataclass(frozen=True, slots=True)
class Semver:
    major: int
    minor: int
    patch: int
    pre: tuple[int | str, ...] = ()
    build: tuple[str, ...] = ()

    def compare(self, other: Semver) -> int:
        for a, b in ((self.major, other.major), (self.minor, other.minor),
                     (self.patch, other.patch)):
            if a != b:
                return -1 if a < b else 1
        # A version without prerelease has higher precedence than one with.
        if not self.pre or not other.pre:
            if self.pre == other.pre:
                return 0
            return 1 if not self.pre else -1
        for x, y in zip(self.pre, other.pre, strict=False):
            c = _compare_pre(x, y)
            if c:
                return c
        return (len(self.pre) > len(other.pre)) - (len(self.pre) < len(other.pre))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Semver):
            return NotImplemented
        return self.compare(other) == 0

    def __lt__(self, other: Semver) -> bool:
        return self.compare(other) < 0

    def __hash__(self) -> int:
        return hash((self.major, self.minor, self.patch, self.pre))

    def __str__(self) -> str:
        s = f"{self.major}.{self.minor}.{self.patch}"
        if self.pre:
            s += "-" + ".".join(str(p) for p in self.pre)
        if self.build:
            s += "+" + ".".join(self.build)
        return s


def _compare_pre(x: int | str, y: int | str) -> int:
    if isinstance(x, int) and isinstance(y, int):
        return (x > y) - (x < y)
    if isinstance(x, int):
        return -1  # numeric identifiers sort before alphanumeric ones
    if isinstance(y, int):
        return 1
    return (x > y) - (x < y)


def _uint(part: str, what: str) -> int:
    if not set(part) <= _NUMBERS:
        raise SemverError(f'Invalid character(s) found in {what} number "{part}"')
    if len(part) > 1 and part[0] == "0":
        raise SemverError(f'{what.capitalize()} number must not contain leading zeroes "{part}"')
    if not part:
        raise SemverError('strconv.ParseUint: parsing "": invalid syntax')
    value = int(part)
    if value > _UINT64_MAX:
        raise SemverError(f'strconv.ParseUint: parsing "{part}": value out of range')
    return value


def parse_semver(s: str, normalize: bool = False) -> Semver:
    """``semver.Parse`` (or Kubernetes' normalize-then-parse when ``normalize``)."""
    if normalize:
        s = _normalize(s)
    if not s:
        raise SemverError("Version string empty")
    parts = s.split(".", 2)
    if len(parts) != 3:
        raise SemverError("No Major.Minor.Patch elements found")
    major = _uint(parts[0], "major")
    minor = _uint(parts[1], "minor")
    patch_str = parts[2]
    build: list[str] = []
    pre_raw: list[str] = []
    if "+" in patch_str:
        patch_str, _, build_str = patch_str.partition("+")
        build = build_str.split(".")
    if "-" in patch_str:
        patch_str, _, pre_str = patch_str.partition("-")
        pre_raw = pre_str.split(".")
    patch = _uint(patch_str, "patch")
    pre: list[int | str] = []
    for p in pre_raw:
        if not p:
            raise SemverError("Prerelease is empty")
        if set(p) <= _NUMBERS:
            if len(p) > 1 and p[0] == "0":
                raise SemverError(
                    f'Numeric PreRelease version must not contain leading zeroes "{p}"')
            pre.append(int(p))
        elif set(p) <= _ALPHANUM:
            pre.append(p)
        else:
            raise SemverError(f'Invalid character(s) found in prerelease "{p}"')
    for b in build:
        if not b:
            raise SemverError("Build meta data is empty")
        if not set(b) <= _ALPHANUM:
            raise SemverError(f'Invalid character(s) found in build meta data "{b}"')
    return Semver(major, minor, patch, tuple(pre), tuple(build))


def _normalize(s: str) -> str:
    """Kubernetes' normalisation: drop ``v``, pad to three parts, strip leading zeros."""
    s = s.removeprefix("v")
    core, dash, rest = s.partition("-")
    parts = core.split(".")
    while len(parts) < 3:
        parts.append("0")
    parts = [p.lstrip("0") or "0" if len(p) > 1 and p[0] == "0" else p for p in parts]
    return ".".join(parts) + (dash + rest if dash else "")


def is_semver(s: str, normalize: bool = False) -> bool:
    try:
        parse_semver(s, normalize)
    except SemverError:
        return False
    return True
