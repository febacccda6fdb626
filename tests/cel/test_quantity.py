"""Quantity parsing follows apimachinery's strict grammar; arithmetic is exact."""

from __future__ import annotations

import pytest
from modelplane.cel.quantity import (
    ERR_FORMAT,
    ERR_SUFFIX,
    Quantity,
    QuantityError,
    is_quantity,
    parse_quantity,
)


@pytest.mark.parametrize(
    ("text", "unscaled", "exp"),
    [
        ("0", 0, 0),
        ("12Mi", 12 * 2**20, 0),
        ("23034Mi", 23034 * 2**20, 0),
        ("1.5Gi", 15 * 2**30, -1),
        ("100m", 100, -3),
        ("0.2G", 2, 8),
        ("1e3", 1, 3),
        ("1E-3", 1, -3),
        ("-5k", -5, 3),
        ("+7", 7, 0),
        (".5", 5, -1),
        ("1.", 1, 0),
        ("5n", 5, -9),
        ("2E", 2, 18),
    ],
)
def test_valid_quantities_parse_to_exact_values(text: str, unscaled: int, exp: int) -> None:
    assert parse_quantity(text) == Quantity(unscaled, exp)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", ERR_FORMAT),
        (" 1", ERR_FORMAT),
        ("1 ", ERR_FORMAT),
        ("1.2.3", ERR_FORMAT),
        ("10Mo", ERR_FORMAT),
        ("1e3Ki", ERR_FORMAT),
        ("10Mm", ERR_SUFFIX),
        ("1ki", ERR_SUFFIX),
        ("1e", ERR_SUFFIX),
        ("1m5", ERR_SUFFIX),
        ("1Ki ", ERR_FORMAT),
    ],
)
def test_strict_grammar_rejects_what_the_api_server_rejects(text: str, message: str) -> None:
    with pytest.raises(QuantityError) as exc:
        parse_quantity(text)
    assert str(exc.value) == message
    assert not is_quantity(text)


def test_sub_nano_values_round_up_to_one_nano() -> None:
    assert parse_quantity("0.0000000001") == parse_quantity("1n")


def test_binary_quantities_are_capped_at_int64_max() -> None:
    assert parse_quantity("100000000000Ei") == Quantity(2**63 - 1, 0)


def test_integer_form_depends_on_representation_like_kubernetes() -> None:
    assert parse_quantity("50k").as_int64() == 50000
    assert parse_quantity("1000m").as_int64() is None  # scale < 0 in Kubernetes too
    assert parse_quantity("9999999999999999999999").as_int64() is None


def test_arithmetic_is_exact_and_does_not_mutate() -> None:
    a = parse_quantity("0.1")
    b = parse_quantity("0.2")
    assert a.add(b) == parse_quantity("0.3")
    assert a == parse_quantity("100m")
    big = parse_quantity("9999999999999999999999999999999999999")
    assert big.add(parse_quantity("1")).cmp(big.add(parse_quantity("2"))) == -1


def test_subtracting_from_zero_yields_the_big_form() -> None:
    assert parse_quantity("0").sub(parse_quantity("1")).as_int64() is None


def test_huge_exponents_compare_without_materialising() -> None:
    assert parse_quantity("1e2000000000").cmp(parse_quantity("1")) == 1
    assert parse_quantity("-1e2000000000").cmp(parse_quantity("1")) == -1
