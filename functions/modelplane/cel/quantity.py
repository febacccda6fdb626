"""Kubernetes ``resource.Quantity`` for CEL: apimachinery's strict grammar, exact arithmetic.

Why not ``kubernetes.utils.parse_quantity``: it accepts strings the API server rejects (e.g.
surrounding whitespace, any float spelling) and works in binary floating point. Device selectors
must agree with the scheduler, so this module follows apimachinery's grammar and its two internal
representations:

* a small exact form (``int64Amount``: an int64 ``value`` times ``10**scale``) used whenever the
  number fits, and
* a big decimal form (``inf.Dec``) otherwise.

The distinction is observable from CEL: ``isInteger()``/``asInteger()`` only succeed for the
small form at a non-negative scale (``quantity("1000m").isInteger()`` is ``false`` in Kubernetes),
so it is kept here as the ``big`` flag. Values are exact Python integers scaled by powers of ten.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

__all__ = [
    "ERR_FORMAT",
    "ERR_NUMERIC",
    "ERR_SUFFIX",
    "Quantity",
    "QuantityError",
    "parse_quantity",
]

_INT64_MAX: Final = 2**63 - 1
_INT64_MIN: Final = -(2**63)
# apimachinery's maxInt64Factors: digits that always fit an int64.
_MAX_INT64_FACTORS: Final = 18
_NANO: Final = -9
# Largest gap between two operands' decimal exponents we align exactly. Kubernetes would build a
# big integer of that many digits; we refuse instead so a selector cannot exhaust memory.
_MAX_ALIGN: Final = 4096

_SPLIT_RE: Final = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
ERR_FORMAT: Final = f"quantities must match the regular expression '{_SPLIT_RE}'"
ERR_NUMERIC: Final = "unable to parse quantity's numeric part"
ERR_SUFFIX: Final = "unable to parse quantity's suffix"

_SUFFIX_CHARS: Final = frozenset("eEinumkKMGTP")
_DIGITS: Final = frozenset("0123456789")
_DEC_SUFFIXES: Final = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12,
                        "P": 15, "E": 18}
_BIN_SUFFIXES: Final = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}


class QuantityError(ValueError):
    """A quantity string or operation Kubernetes would reject; the message is Kubernetes' own."""


@dataclass(frozen=True, slots=True)
class Quantity:
    """An exact quantity ``unscaled * 10**exp``.

    ``big`` is true when Kubernetes would hold the value as an ``inf.Dec`` rather than an int64
    amount (see the module docstring); it only affects ``as_int64``. Equality and ordering are by
    value, like ``Quantity.Cmp``.
    """

    unscaled: int
    exp: int
    big: bool = False

    # -- comparisons -------------------------------------------------------------------------
    def cmp(self, other: Quantity) -> int:
        """-1, 0 or 1 like ``Quantity.Cmp``, without materialising huge powers of ten."""
        a, b = self.unscaled, other.unscaled
        sa, sb = _sign(a), _sign(b)
        if sa != sb:
            return -1 if sa < sb else 1
        if sa == 0:
            return 0
        # Same sign: compare magnitudes by order of magnitude first (cheap), then exactly.
        mag_a = len(str(abs(a))) + self.exp
        mag_b = len(str(abs(b))) + other.exp
        if mag_a != mag_b:
            bigger = 1 if mag_a > mag_b else -1
            return bigger * sa
        lo = min(self.exp, other.exp)
        x = a * 10 ** (self.exp - lo)
        y = b * 10 ** (other.exp - lo)
        return (x > y) - (x < y)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Quantity):
            return NotImplemented
        return self.cmp(other) == 0

    def __hash__(self) -> int:
        # Normalise trailing zeros so equal values hash alike.
        u, e = self.unscaled, self.exp
        if u == 0:
            return hash(0)
        while u % 10 == 0:
            u //= 10
            e += 1
        return hash((u, e))

    def sign(self) -> int:
        return _sign(self.unscaled)

    # -- conversions -------------------------------------------------------------------------
    def as_int64(self) -> int | None:
        """``Quantity.AsInt64``: only the small form at scale >= 0 that fits an int64."""
        if self.big:
            return None
        if self.exp == 0:
            return self.unscaled
        if self.exp < 0:
            return None
        if self.exp > 18 and self.unscaled != 0:
            return None
        v = self.unscaled * 10**self.exp
        return v if _INT64_MIN <= v <= _INT64_MAX else None

    def as_approximate_float(self) -> float:
        """``AsApproximateFloat64``: float(unscaled) * 10**exp (infinite when out of range)."""
        try:
            base = float(self.unscaled)
        except OverflowError:
            base = math.inf if self.unscaled > 0 else -math.inf
        if self.exp == 0:
            return base
        if self.exp > 308:
            return base * math.inf if base else 0.0
        if self.exp < -323:
            return 0.0
        return base * float(f"1e{self.exp}")

    # -- arithmetic --------------------------------------------------------------------------
    def add(self, other: Quantity) -> Quantity:
        """``Quantity.Add``: stays in the int64 form while it fits, else switches to big."""
        if not self.big and not other.big:
            small = _small_add(self, other)
            if small is not None:
                return small
        return _big_sum(self, other)

    def sub(self, other: Quantity) -> Quantity:
        """``Quantity.Sub``; like Kubernetes, subtracting from zero yields the big form."""
        neg = Quantity(-other.unscaled, other.exp, other.big)
        if self.unscaled == 0:
            return Quantity(neg.unscaled, neg.exp, True)
        if not self.big and not other.big and _INT64_MIN < -other.unscaled <= _INT64_MAX:
            small = _small_add(self, neg)
            if small is not None:
                return small
        return _big_sum(self, neg)

    def __str__(self) -> str:
        return self.canonical()

    def canonical(self) -> str:
        """A readable exact spelling (decimal SI suffixes); not Kubernetes' byte-exact String()."""
        u, e = self.unscaled, self.exp
        if u == 0:
            return "0"
        while u % 10 == 0:
            u //= 10
            e += 1
        if e >= 0:
            for suffix, power in (("E", 18), ("P", 15), ("T", 12), ("G", 9), ("M", 6), ("k", 3)):
                if e >= power and e - power < 3:
                    return f"{u * 10 ** (e - power)}{suffix}"
            return str(u * 10**e) if e < 18 else f"{u}e{e}"
        for suffix, power in (("m", -3), ("u", -6), ("n", -9)):
            if e >= power:
                return f"{u * 10 ** (e - power)}{suffix}"
        return f"{u}e{e}"


def _sign(v: int) -> int:
    return (v > 0) - (v < 0)


def _fits(v: int) -> bool:
    return _INT64_MIN <= v <= _INT64_MAX


def _small_add(a: Quantity, b: Quantity) -> Quantity | None:
    """int64Amount.Add: align to the smaller scale; None on int64 overflow."""
    if b.unscaled == 0:
        return a
    if a.unscaled == 0:
        return Quantity(b.unscaled, b.exp)
    lo = min(a.exp, b.exp)
    if max(a.exp, b.exp) - lo > 18:
        return None
    x = a.unscaled * 10 ** (a.exp - lo)
    y = b.unscaled * 10 ** (b.exp - lo)
    if not (_fits(x) and _fits(y) and _fits(x + y)):
        return None
    return Quantity(x + y, lo)


def _big_sum(a: Quantity, b: Quantity) -> Quantity:
    if a.unscaled == 0:
        return Quantity(b.unscaled, b.exp, True)
    if b.unscaled == 0:
        return Quantity(a.unscaled, a.exp, True)
    lo = min(a.exp, b.exp)
    if max(a.exp, b.exp) - lo > _MAX_ALIGN:
        raise QuantityError("quantity arithmetic out of supported range")
    total = a.unscaled * 10 ** (a.exp - lo) + b.unscaled * 10 ** (b.exp - lo)
    return Quantity(total, lo, True)


def _split(s: str) -> tuple[bool, str, str, str, str]:
    """apimachinery parseQuantityString: (positive, value, num, denom, suffix)."""
    positive = True
    pos = 0
    end = len(s)
    if pos < end and s[0] in "+-":
        positive = s[0] == "+"
        pos += 1
    # Strip leading zeros; a string of only zeros (or only a sign) is zero.
    while True:
        if pos >= end:
            return positive, "0", "0", "", ""
        if s[pos] != "0":
            break
        pos += 1
    start = pos
    while pos < end and s[pos] in _DIGITS:
        pos += 1
    num = s[start:pos] or "0"
    if pos >= end:
        return positive, s, num, "", ""
    denom = ""
    if s[pos] == ".":
        pos += 1
        dstart = pos
        while pos < end and s[pos] in _DIGITS:
            pos += 1
        denom = s[dstart:pos]
        if pos >= end:
            return positive, s, num, denom, ""
    value = s[:pos]
    suffix_start = pos
    while pos < end and s[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos >= end:
        return positive, value, num, denom, s[suffix_start:]
    if s[pos] in "+-":
        pos += 1
    while pos < end and s[pos] in _DIGITS:
        pos += 1
    if pos < end:
        raise QuantityError(ERR_FORMAT)
    return positive, value, num, denom, s[suffix_start:]


def _interpret(suffix: str) -> tuple[int, int, str] | None:
    """(base, exponent, format) for a suffix, as quantitySuffixer.interpret."""
    if suffix in _DEC_SUFFIXES:
        return 10, _DEC_SUFFIXES[suffix], "DecimalSI"
    if suffix in _BIN_SUFFIXES:
        return 2, _BIN_SUFFIXES[suffix], "BinarySI"
    if len(suffix) > 1 and suffix[0] in "eE":
        digits = suffix[1:]
        body = digits[1:] if digits[:1] in "+-" else digits
        if not body or not body.isdigit():
            return None
        parsed = int(digits)
        if not _fits(parsed):
            return None
        # Go converts the int64 exponent with int32(); reproduce the wrap-around.
        wrapped = (parsed + 2**31) % 2**32 - 2**31
        return 10, wrapped, "DecimalExponent"
    return None


def parse_quantity(s: str) -> Quantity:
    """Parse like ``resource.ParseQuantity``; raises QuantityError with Kubernetes' message."""
    if not s:
        raise QuantityError(ERR_FORMAT)
    if s == "0":
        return Quantity(0, 0)
    positive, value, num, denom, suffix = _split(s)
    interpreted = _interpret(suffix)
    if interpreted is None:
        raise QuantityError(ERR_SUFFIX)
    base, exponent, fmt = interpreted

    precision = 0
    scale = 0
    mantissa = 1
    if fmt in ("DecimalExponent", "DecimalSI"):
        scale = exponent
        precision = _MAX_INT64_FACTORS - (len(num) + len(denom))
    elif exponent >= 0 and not denom:
        mantissa = 1 << exponent
        precision = 15 - len(num) - int(exponent * 3 / 10) - 1
    else:
        precision = -1

    if precision >= 0:
        scale -= len(denom)
        if scale >= _NANO:
            shifted = int(num + denom)
            result = shifted * mantissa
            if _fits(result):
                return Quantity(result if positive else -result, scale)

    # Slow path: exact decimal of the numeric part, suffix applied, then Kubernetes' rounding.
    digits = value.lstrip("+-")
    int_part, _, frac_part = digits.partition(".")
    if not (int_part + frac_part).isdigit():
        raise QuantityError(ERR_NUMERIC)
    unscaled = int(int_part + frac_part)
    exp = -len(frac_part)
    if base == 10:
        exp += exponent
    else:
        unscaled <<= exponent
    # Round non-zero magnitudes up to the nearest nano (RoundUp away from zero): "if you want some
    # resources, you should get some resources".
    if unscaled != 0 and exp < _NANO:
        shift = _NANO - exp
        if shift > _MAX_ALIGN:
            unscaled = 1
        else:
            q, r = divmod(unscaled, 10**shift)
            unscaled = q + (1 if r else 0)
        exp = _NANO
    # BinarySI magnitudes are capped at the int64 maximum (Kubernetes' maxAllowed).
    if fmt == "BinarySI" and Quantity(unscaled, exp).cmp(Quantity(_INT64_MAX, 0)) > 0:
        unscaled, exp = _INT64_MAX, 0
    return Quantity(unscaled if positive else -unscaled, exp, True)


def is_quantity(s: str) -> bool:
    try:
        parse_quantity(s)
    except QuantityError:
        return False
    return True


def quantity_from_int(v: int) -> Quantity:
    """``resource.NewQuantity(v, DecimalExponent)``: an int64 amount at scale 0."""
    return Quantity(v, 0)
