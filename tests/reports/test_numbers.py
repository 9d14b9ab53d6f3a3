"""Numbers as the dashboard and the reports print them."""
from __future__ import annotations

import math

from reports import numbers


def test_compact_numbers_round_to_two_digits_past_a_thousand():
    cases = {0: "0", 950: "950", 1234: "1.2k", 12_345: "12k", 999_950: "1M", 3_400_000: "3.4M", -1500: "-1.5k",
             2.5: "2.50", 7e9: "7B"}
    assert {v: numbers.compact(v) for v in cases} == cases
    assert numbers.compact(25.345, "percent") == "25.3 %"
    assert numbers.compact(1234, "usd") == "$1.2k"
    assert numbers.compact(None) == numbers.compact(math.nan) == "–"      # a gauge before its first value


def test_full_numbers_deltas_and_percentages():
    assert numbers.full(1_234_567) == "1,234,567" and numbers.full(-1234, "usd") == "-$1,234"
    assert numbers.full(25.3, "percent") == "25.30 %"
    assert numbers.delta(1234) == "+1.2k" and numbers.delta(-1234, short=False) == "-1,234"
    assert numbers.delta(0) == "+0" and numbers.delta(2.5, "percent") == "+2.5 pt"
    assert numbers.percent(12.345) == "+12.3 %" and numbers.percent(None) == "–"
