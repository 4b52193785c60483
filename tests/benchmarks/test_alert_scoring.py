"""The alert-quality run's model of Prometheus (`for`, `keep_firing_for`) and of the
incidents it scores against."""

from __future__ import annotations

from datetime import date

from benchmarks.alerts import (
    Episode,
    Route,
    Routes,
    alertmanager,
    episodes,
    first_deadline,
    group_sends,
    matches,
    notifications,
    unmuted,
)
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


DAILY = Route(("unit",), 30.0, 300.0, 24 * H, send_resolved=True)


def test_alertmanager_repeats_and_resolves_as_its_route_says() -> None:
    # firing 49 hours: the first notification, repeats after 24 and 48 hours, the all-clear
    assert len(group_sends([("a", 0.0, 49 * H)], DAILY)) == 4
    quiet = Route(("unit",), 30.0, 300.0, 168 * H, send_resolved=False)
    assert group_sends([("a", 0.0, 49 * H)], quiet) == [30.0]
    # a second alert joining the group is news: sent at the next group interval
    sends = group_sends([("a", 0.0, 10 * H), ("b", 2 * H, 10 * H)], quiet)
    assert sends == [30.0, 2 * H + 30.0]
    # one alert of two resolving is no news without send_resolved
    assert len(group_sends([("a", 0.0, 10 * H), ("b", 0.0, 3 * H)], quiet)) == 1
    # an alert that fires again after its group ended is a new episode
    assert len(group_sends([("a", 0.0, 2 * H), ("a", 30 * H, 31 * H)], quiet)) == 2


def test_the_repositorys_pages_notify_once_per_episode_and_ops_get_reminders() -> None:
    routes, inhibits = alertmanager()
    page = {"severity": "page", "team": "bup", "indicator": "bup_besok_30", "unit": "u",
            "scope": "unit", "alertname": "VardgarantiBreachBurst"}
    # a change page held two days after a one-day condition: one notification
    assert notifications([Episode("VardgarantiBreachBurst", page, 0.0, 72 * H)], routes) == 1
    drift = {"severity": "page", "team": "drift", "alertname": "VardgarantiWorkerDown"}
    assert routes.route(drift) != routes.route(page)
    assert notifications([Episode("VardgarantiWorkerDown", drift, 0.0, 30 * H)], routes) == 3
    # the unit's burst mutes its worse share (same indicator and unit), not another unit's
    worse = {**page, "alertname": "VardgarantiUnitWorse"}
    burst = Episode("VardgarantiBreachBurst", page, 10 * H, 20 * H)
    kept = unmuted([Episode("VardgarantiUnitWorse", worse, 0.0, 30 * H), burst], inhibits)
    assert [(e.alert, e.start, e.end) for e in kept] == [
        ("VardgarantiUnitWorse", 0.0, 9 * H), ("VardgarantiUnitWorse", 21 * H, 30 * H),
        ("VardgarantiBreachBurst", 10 * H, 20 * H)]
    other = Episode("VardgarantiUnitWorse", {**worse, "unit": "v"}, 0.0, 30 * H)
    assert unmuted([other, burst], inhibits)[0] == other


def test_routes_pick_the_first_match() -> None:
    a, b = Route(("x",), 0, 1, 2, True), Route(("y",), 0, 1, 2, False)
    routes = Routes((({"severity": "page", "team": "drift"}, a), ({"severity": "page"}, b)),
                    a)
    assert routes.route({"severity": "page", "team": "bup"}) is b
    assert routes.route({"severity": "page", "team": "drift"}) is a
