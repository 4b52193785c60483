"""The alert-quality run's model of Prometheus (`for`, `keep_firing_for`) and of the
incidents it scores against."""

from __future__ import annotations

from datetime import date

from benchmarks.alerts import Episode, episodes, first_deadline, matches, notifications
from consumers.export import stamp
from dashboards.alerts import Alert
from vardgaranti.generate import Incident

H = 3600.0


def _rule(for_: str = "0m", keep: str = "") -> Alert:
    return Alert("X", "x", for_, {}, {}, keep)


def _true(*hours: int) -> list[tuple[float, float]]:
    return [(h * H, 1.0) for h in hours]


def test_for_delays_and_a_short_blip_never_fires() -> None:
    rule = _rule("2h")
    assert episodes(rule, _true(3, 4, 5, 6, 10), 0, 20 * H, H) == [(5 * H, 6 * H)]


def test_keep_firing_bridges_gaps_and_ends_after_its_time() -> None:
    rule = _rule("0m", "3h")
    # true at 1-2, false 3-4, true 5: one episode; then false long enough: it ends
    got = episodes(rule, _true(1, 2, 5), 0, 20 * H, H)
    assert got == [(1 * H, 8 * H)]  # kept from 6 h: firing at 6, 7, 8; resolved at 9
    assert episodes(_rule(), _true(1, 2, 5), 0, 20 * H, H) == [(1 * H, 2 * H), (5 * H, 5 * H)]


def test_matching_incidents_by_unit_indicator_and_time() -> None:
    inc = Incident("bup-sala", "bup_besok_30", date(2024, 6, 3), date(2024, 6, 30), 0.1)
    at = float(stamp(date(2024, 6, 5).toordinal()))
    labels = {"indicator": "bup_besok_30", "scope": "unit", "unit": "bup-sala",
              "severity": "page", "team": "bup"}
    assert matches(Episode("X", labels, at, at + H), inc)
    assert not matches(Episode("X", {**labels, "unit": "bup-koping"}, at, at + H), inc)
    assert not matches(Episode("X", {**labels, "indicator": "besok_90"}, at, at + H), inc)
    early = float(stamp(date(2024, 3, 1).toordinal()))
    assert not matches(Episode("X", labels, early, early + H), inc)
    # firing since before the first affected deadline (the midnight ending June 3): not
    # caused by the incident, even while it lasts into it
    assert not matches(Episode("X", labels, early, at), inc)
    assert first_deadline(inc) == float(stamp(date(2024, 6, 3).toordinal()))
    assert not matches(Episode("X", labels, first_deadline(inc) - H, at), inc)
    assert matches(Episode("X", labels, first_deadline(inc), at), inc)
    # a page is repeated every 24 h while it fires
    assert notifications([Episode("X", labels, at, at + 49 * H)]) == 3
