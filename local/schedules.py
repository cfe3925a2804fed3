"""When an EventBridge schedule expression fires next: `rate(N minute|minutes|hour|hours|day|days)` and
`cron(minutes hours day-of-month month day-of-week year)` with `*`, `?`, lists, ranges and `/` steps (UTC).
The `L`, `W` and `#` forms are refused with a clear error rather than misread."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_UNITS = {"minute": 60, "hour": 3600, "day": 86400}
_DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_MONTHS = {
    m: i
    for i, m in enumerate(["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], start=1)
}


class ScheduleError(ValueError):
    pass


def next_time(expression: str, after: datetime) -> datetime:
    rate = re.fullmatch(r"rate\((\d+) (minute|hour|day)s?\)", expression.strip())
    if rate:
        return after + timedelta(seconds=int(rate.group(1)) * _UNITS[rate.group(2)])
    cron = re.fullmatch(r"cron\((.+)\)", expression.strip())
    if not cron:
        raise ScheduleError(f"{expression}: not a rate(...) or cron(...) expression")
    fields = cron.group(1).split()
    if len(fields) != 6:
        raise ScheduleError(f"{expression}: cron takes six fields")
    minutes, hours, days, months, weekdays, years = (
        _values(fields[0], 0, 59),
        _values(fields[1], 0, 23),
        _values(fields[2], 1, 31),
        _values(fields[3], 1, 12, names=_MONTHS),
        _values(fields[4], 1, 7, names=_DAYS),
        _values(fields[5], 1970, 2199),
    )
    moment = after.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    for _ in range(60 * 24 * 366 * 2):  # two years of minutes at most
        # EventBridge counts Sunday as 1
        weekday = (moment.isoweekday() % 7) + 1
        if (
            moment.minute in minutes
            and moment.hour in hours
            and moment.day in days
            and moment.month in months
            and weekday in weekdays
            and moment.year in years
        ):
            return moment
        moment += timedelta(minutes=1)
    raise ScheduleError(f"{expression}: never fires in the next two years")


def _values(field: str, low: int, high: int, *, names: dict[str, int] | None = None) -> set[int]:
    names = names or {}
    if field in {"*", "?"}:
        return set(range(low, high + 1))
    if re.search(r"[LW#]", field):
        raise ScheduleError(f"cron field {field!r}: L, W and # are not supported locally")
    found: set[int] = set()
    for part in field.split(","):
        body, _, step = part.partition("/")
        if body in {"*", ""}:
            start, end = low, high
        elif "-" in body:
            first, last = body.split("-", 1)
            start, end = _one(first, names), _one(last, names)
        else:
            start = _one(body, names)
            end = high if step else start
        found |= set(range(start, end + 1, int(step) if step else 1))
    return found


def _one(token: str, names: dict[str, int]) -> int:
    return names[token.upper()] if token.upper() in names else int(token)
