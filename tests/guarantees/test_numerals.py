"""Amounts in Chinese capital numerals, as letters print them."""

from __future__ import annotations

import pytest

from guarantees.numerals import AmountOutOfRange, amount_in_capitals, amount_in_figures

CASES = [
    (0, "零元整"),
    (1, "壹分"),
    (10, "壹角整"),
    (11, "壹角壹分"),
    (100, "壹元整"),
    (105, "壹元零伍分"),
    (110, "壹元壹角整"),
    (1000, "壹拾元整"),
    (1_500, "壹拾伍元整"),
    (10_000, "壹佰元整"),
    (100_100, "壹仟零壹元整"),
    (100_050, "壹仟元零伍角整"),
    (100_005, "壹仟元零伍分"),
    (168_032, "壹仟陆佰捌拾元零叁角贰分"),
    (1_000_000, "壹万元整"),
    (1_010_100, "壹万零壹佰零壹元整"),
    (10_010_000, "壹拾万零壹佰元整"),
    (60_036_000, "陆拾万零叁佰陆拾元整"),
    (80_000_000, "捌拾万元整"),
    (100_000_000, "壹佰万元整"),
    (100_000_001, "壹佰万元零壹分"),
    (1_004_000_000, "壹仟零肆万元整"),
    (10_000_000_000, "壹亿元整"),
    (10_000_000_100, "壹亿零壹元整"),
    (10_001_000_000, "壹亿零壹万元整"),
    (120_000_000_000, "壹拾贰亿元整"),
    (1_000_000_000_000, "壹佰亿元整"),
    (2_000_100_000_000, "贰佰亿零壹佰万元整"),
    (123_456_789_012, "壹拾贰亿叁仟肆佰伍拾陆万柒仟捌佰玖拾元零壹角贰分"),
    (3_000_000_000_000_000, "叁拾万亿元整"),
]


@pytest.mark.parametrize(("fen", "expected"), CASES)
def test_capitals(fen: int, expected: str) -> None:
    assert amount_in_capitals(fen) == expected


@pytest.mark.parametrize("bad", [-1, 10**16, 1.5, True])
def test_out_of_range(bad: object) -> None:
    with pytest.raises(AmountOutOfRange):
        amount_in_capitals(bad)  # type: ignore[arg-type]


def test_figures() -> None:
    assert amount_in_figures(80_000_000) == "¥800,000.00"
    assert amount_in_figures(5) == "¥0.05"
    assert amount_in_figures(123_456_789_012) == "¥1,234,567,890.12"
