"""Numbers as people read them: 1.2k, 3.4M, 25.3 %, $1.2k; the same text on screen, in PDFs and in digests."""
from __future__ import annotations

import math

CURRENCY_SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "currency": "$"}


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def compact(value, unit: str = "") -> str:
    """A short number: 950, 1.2k, 12k, 3.4M (two significant digits past a thousand), with the unit's sign;
    "–" for no value (a gauge before its first observation)."""
    if _missing(value):
        return "–"
    if unit == "percent":
        return f"{value:.1f} %"
    sign, size = ("-" if value < 0 else ""), abs(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if size >= limit:
            scaled = size / limit
            text = f"{scaled:.1f}".rstrip("0").rstrip(".") if scaled < 10 else f"{scaled:.0f}"
            if text == "1000" and suffix != "B":     # 999,950 is 1M, not 1000k
                text, suffix = "1", {"k": "M", "M": "B"}[suffix]
            break
    else:
        text, suffix = (f"{size:,.0f}" if float(size).is_integer() else f"{size:,.2f}"), ""
    return f"{sign}{CURRENCY_SYMBOLS.get(unit, '')}{text}{suffix}"


def full(value, unit: str = "") -> str:
    """Every digit, grouped: 12,345; 25.30 %; $1,234; "–" for no value."""
    if _missing(value):
        return "–"
    if unit == "percent":
        return f"{value:,.2f} %"
    text = f"{abs(value):,.0f}" if float(value).is_integer() else f"{abs(value):,.2f}"
    return f"{'-' if value < 0 else ''}{CURRENCY_SYMBOLS.get(unit, '')}{text}"


def delta(value, unit: str = "", short: bool = True) -> str:
    """A signed change: +56, -1.2k (`short=False`: -1,234), +0.4 pt (a change of a percentage is in points)."""
    if _missing(value):
        return "–"
    if unit == "percent":
        return f"{value:+.1f} pt"
    text = compact(abs(value), unit) if short else full(abs(value), unit)
    return f"{'-' if value < 0 else '+'}{text}"


def percent(value) -> str:
    """A relative change: +12.5 %; "–" where there is nothing to compare with."""
    return "–" if _missing(value) else f"{value:+.1f} %"
