"""The ``snowflake`` path converter: ``path("orders/<snowflake:pk>/", ...)``."""

from __future__ import annotations

from .ints import is_int
from .layout import MAX_ID


class SnowflakeConverter:
    """Matches 1 to 19 digits and passes an ``int`` from 0 to ``2**63 - 1`` to the view.

    A larger number does not match the route (a 404, not a database error); ``reverse()``
    accepts an ID as an ``int`` or as a string of digits.
    """

    # 19 digits hold every ID, and some numbers that are not: to_python() turns those away.
    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if number > MAX_ID:
            # Django's resolver takes a ValueError as "this route does not match".
            raise ValueError(f"{value} is above the largest Snowflake ID, {MAX_ID}")
        return number

    def to_url(self, value: int | str) -> str:
        if isinstance(value, str) and value.isascii() and value.isdigit():
            number: object = int(value)
        else:
            number = value
        if not is_int(number) or not 0 <= number <= MAX_ID:
            # reverse() turns the ValueError into NoReverseMatch.
            raise ValueError(f"{value!r} is not a Snowflake ID from 0 to {MAX_ID}")
        return str(number)
