"""Query and path parameter types shared by the routes, strict enough that the OpenAPI document says what is
accepted and FastAPI refuses the rest (answered as a 400 by `api.errors`):

- `Day`: a date written exactly `YYYY-MM-DD`. Pydantic's own `date` also takes Unix timestamps (`?since=0`
  was read as 1970-01-01) and datetimes; a day in this API is only ever a calendar date.
- `Grain` and `Compare`: the six grains and the three comparisons, as enums.
"""
from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Literal

from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_day(value):
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not ISO_DAY.fullmatch(value):
        raise PydanticCustomError("date_parsing", "Input should be a valid date as YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise PydanticCustomError("date_parsing", "Input should be a valid date as YYYY-MM-DD") from None


Day = Annotated[date, BeforeValidator(_iso_day)]
Grain = Literal["hour", "day", "week", "month", "quarter", "year"]
Compare = Literal["wow", "mom", "yoy"]
