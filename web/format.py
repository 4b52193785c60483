"""Numbers, shares, dates and times as a Swedish (or English) reader expects them, by Babel.

`129 292`, `88,4 %`, `31 december 2025`, times in Europe/Stockholm. The pages, the CSV
export and the terminal tables all format through here.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import cache
from typing import Literal
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal, format_percent

Lang = Literal["sv", "en"]
LOCALES: dict[Lang, str] = {"sv": "sv_SE", "en": "en_GB"}
STOCKHOLM = ZoneInfo("Europe/Stockholm")
DASH = "–"  # shown for a share with nothing to divide


@cache
def _percent_pattern(lang: Lang) -> str:
    """The locale's percent pattern with one decimal: `#,##0,0 %` in Swedish."""
    pattern: str = Locale.parse(LOCALES[lang]).percent_formats[None].pattern
    head, sep, tail = pattern.rpartition("0")
    return f"{head}0.0{tail}" if sep else pattern


def number(n: int, lang: Lang = "sv") -> str:
    return format_decimal(n, locale=LOCALES[lang])


def share(v: float | None, lang: Lang = "sv") -> str:
    """A ratio 0..1 as a percentage with one decimal; a dash when there is none."""
    if v is None:
        return DASH
    return format_percent(v, _percent_pattern(lang), locale=LOCALES[lang])


def whole_share(v: float, lang: Lang = "sv") -> str:
    """A share without decimals, for chart axes: `80 %`."""
    return format_percent(v, locale=LOCALES[lang])


def decimal(v: float | None, lang: Lang = "sv", digits: int = 1) -> str:
    """A plain decimal number (decimal comma in Swedish), empty when there is none."""
    if v is None:
        return ""
    return format_decimal(v, "0." + "0" * digits, locale=LOCALES[lang])


def day(d: date, lang: Lang = "sv") -> str:
    return format_date(d, "d MMMM y", locale=LOCALES[lang])


def moment(ts_us: int, lang: Lang = "sv") -> str:
    """An instant (unix microseconds) in Stockholm local time."""
    instant = datetime.fromtimestamp(ts_us / 1e6, tz=UTC)
    return format_datetime(instant, "d MMMM y HH:mm", tzinfo=STOCKHOLM, locale=LOCALES[lang])


def month_names(lang: Lang = "sv") -> list[str]:
    """Abbreviated month names, January first."""
    names = Locale.parse(LOCALES[lang]).months["stand-alone"]["abbreviated"]
    return [str(names[m]).rstrip(".") for m in range(1, 13)]


def local_time(iso: str) -> str:
    """An ISO instant as Stockholm wall-clock time, `2025-10-02 08:55` (Excel reads it)."""
    return datetime.fromisoformat(iso).astimezone(STOCKHOLM).strftime("%Y-%m-%d %H:%M")


# Swedish alphabetical order ends ... x, y, z, å, ä, ö; code points put Ä before Å.
_SWEDISH_TAIL = str.maketrans({"å": "z\U0010fffd", "ä": "z\U0010fffe", "ö": "z\U0010ffff"})


def swedish_key(text: str) -> str:
    """A sort key that orders names as a Swedish reader expects (Å, Ä, Ö after Z)."""
    return text.casefold().translate(_SWEDISH_TAIL)
