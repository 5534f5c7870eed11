"""Amounts in Chinese capital numerals (大写金额), as a guarantee letter must state them.

A letter gives the amount twice, in figures and in capitals, so that neither can be altered alone.
The rules followed are those of the People's Bank of China for bills and vouchers (正确填写票据和结算凭证
的基本规定): 元 after the integer part, 整 when there are no 角 or 分, one 零 for any run of zeros
inside the number (and before 角/分 after a zero 元 digit), 零 before a 万/亿 group that starts with zeros.
"""

from __future__ import annotations

DIGITS = "零壹贰叁肆伍陆柒捌玖"
_SMALL_UNITS = ("", "拾", "佰", "仟")
_GROUP_UNITS = ("", "万", "亿", "万亿")
MAX_FEN = 10**16 - 1  # below 1万亿元 × 100: far above any bid bond


class AmountOutOfRange(ValueError):
    """The amount is negative or too large for a guarantee letter."""


def _group(value: int) -> str:
    """0 < value < 10000 in capitals, with 零 for inner zeros (leading zeros are the caller's business)."""
    text = ""
    zero_pending = False
    for position in range(3, -1, -1):
        digit = value // 10**position % 10
        if digit == 0:
            zero_pending = bool(text)
            continue
        if zero_pending:
            text += "零"
            zero_pending = False
        text += DIGITS[digit] + _SMALL_UNITS[position]
    return text


def yuan_in_capitals(integer_yuan: int) -> str:
    """The integer part (元) in capitals, without the 元: 1005 → 壹仟零伍."""
    if integer_yuan == 0:
        return "零"
    groups: list[int] = []
    while integer_yuan:
        groups.append(integer_yuan % 10_000)
        integer_yuan //= 10_000
    text = ""
    zero_pending = False
    for index in range(len(groups) - 1, -1, -1):
        group = groups[index]
        if group == 0:
            zero_pending = bool(text)
            continue
        if text and (zero_pending or group < 1000):
            text += "零"
        zero_pending = False
        text += _group(group) + _GROUP_UNITS[index]
    return text


def amount_in_capitals(fen: int) -> str:
    """An amount in fen as written on a letter: 80000000 → 捌拾万元整, 100050 → 壹仟元零伍角."""
    if not isinstance(fen, int) or isinstance(fen, bool):
        raise AmountOutOfRange(f"amount must be an integer number of fen, not {fen!r}")
    if fen < 0 or fen > MAX_FEN:
        raise AmountOutOfRange(f"amount {fen} fen is outside 0..{MAX_FEN}")
    yuan, rest = divmod(fen, 100)
    jiao, fen_digit = divmod(rest, 10)
    if fen == 0:
        return "零元整"
    text = yuan_in_capitals(yuan) + "元" if yuan else ""
    if jiao == 0 and fen_digit == 0:
        return text + "整"
    if jiao:
        if yuan and yuan % 10 == 0:
            text += "零"
        text += DIGITS[jiao] + "角"
    elif yuan:
        text += "零"
    if fen_digit:
        text += DIGITS[fen_digit] + "分"
    else:
        text += "整"
    return text


def amount_in_figures(fen: int) -> str:
    """¥800,000.00 style, as printed beside the capitals."""
    yuan, rest = divmod(fen, 100)
    return f"¥{yuan:,}.{rest:02d}"
