"""One test per rule and boundary in docs/rules.md."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from models.calendar import WorkCalendar
from models.clocks import Rules, evaluate
from models.measures import INCONSISTENT, ORPHAN
from tests.support.events import ev, facts_by_case, rows


def done(r: dict[tuple[str, str], dict[str, Any]], ind: str, unit: str = "ALL") -> tuple[int, int]:
    row = r[(ind, unit)]
    return row["completed"], row["completed_within"]


# ---------------------------------------------------------------- day limits


@pytest.mark.parametrize(("fulfil_day", "within"), [("07", 1), ("08", 0)])
def test_tre_dagar_day_3_within_day_4_not(fulfil_day: str, within: int) -> None:
    events = [
        ev("assessment.needed", "a", "2024-03-04T23:50:00+01:00"),  # day 0, late evening
        ev("assessment.completed", "a", f"2024-03-{fulfil_day}T00:10:00+01:00",
           profession="lakare"),
    ]
    assert done(rows(events, "2024-03-31"), "tre_dagar") == (1, within)


@pytest.mark.parametrize(("fulfil", "within"), [("2024-04-01", 1), ("2024-04-02", 0)])
def test_besok_90_day_90_within_day_91_not(fulfil: str, within: int) -> None:
    # 2024-01-02 + 90 days = 2024-04-01 (a leap year)
    events = [
        ev("referral.issued", "r", "2024-01-02T10:00:00+01:00", pathway="specialist"),
        ev("visit.completed", "r", f"{fulfil}T08:00:00+02:00"),
    ]
    assert done(rows(events, "2024-04-30"), "besok_90") == (1, within)


@pytest.mark.parametrize(("fulfil", "within"), [("2024-03-31", 1), ("2024-04-01", 0)])
def test_bup_30_day_30_within_day_31_not(fulfil: str, within: int) -> None:
    events = [
        ev("decision.made", "b", "2024-03-01T10:00:00+01:00", pathway="bup", kind="treatment"),
        ev("treatment.started", "b", f"{fulfil}T10:00:00+02:00"),
        ev("referral.issued", "v", "2024-03-01T10:00:00+01:00", pathway="bup"),
        ev("visit.completed", "v", f"{fulfil}T10:00:00+02:00"),
        ev("decision.made", "i", "2024-03-01T10:00:00+01:00", pathway="bup",
           kind="investigation"),
        ev("investigation.started", "i", f"{fulfil}T10:00:00+02:00"),
    ]
    r = rows(events, "2024-04-30", "2024-03-01", "2024-04-30")
    for ind in ("bup_behandling_30", "bup_besok_30", "bup_utredning_30"):
        assert done(r, ind) == (1, within), ind


def test_atgard_90_counts_only_specialist_treatment_decisions() -> None:
    events = [
        ev("decision.made", "t", "2024-01-02T10:00:00+01:00", pathway="specialist",
           kind="treatment"),
        ev("treatment.started", "t", "2024-04-02T10:00:00+02:00"),  # day 91
    ]
    r = rows(events, "2024-04-30")
    assert done(r, "atgard_90") == (1, 0)
    assert ("bup_behandling_30", "ALL") not in r


# ---------------------------------------------------------------- same day


@pytest.mark.parametrize(
    ("requested", "completed", "within"),
    [
        ("2024-03-05T15:59:59+01:00", "2024-03-05T20:00:00+01:00", 1),  # due that Tuesday
        ("2024-03-05T15:59:59+01:00", "2024-03-06T08:00:00+01:00", 0),
        ("2024-03-05T16:00:00+01:00", "2024-03-06T08:00:00+01:00", 1),  # due Wednesday
        ("2024-03-05T16:00:00+01:00", "2024-03-07T08:00:00+01:00", 0),
        ("2024-03-08T16:30:00+01:00", "2024-03-11T12:00:00+01:00", 1),  # Fri 16:30 -> Mon
        ("2024-03-08T16:30:00+01:00", "2024-03-12T09:00:00+01:00", 0),
        ("2024-03-09T10:00:00+01:00", "2024-03-11T15:00:00+01:00", 1),  # Saturday -> Mon
        # the day before Good Friday after 16:00 -> the Tuesday after Easter
        ("2024-03-28T16:05:00+01:00", "2024-04-02T16:30:00+02:00", 1),
        ("2024-03-28T16:05:00+01:00", "2024-04-03T08:00:00+02:00", 0),
    ],
)
def test_samma_dag_deadline(requested: str, completed: str, within: int) -> None:
    events = [
        ev("contact.requested", "k", requested, channel="phone"),
        ev("contact.completed", "k", completed),
    ]
    r = rows(events, "2024-04-30", "2024-03-01", "2024-04-30")
    assert done(r, "samma_dag") == (1, within)


def test_samma_dag_holidays_can_count_as_weekdays() -> None:
    events = [
        ev("contact.requested", "k", "2024-03-29T10:00:00+01:00", channel="phone"),  # Good Fri
        ev("contact.completed", "k", "2024-04-02T10:00:00+02:00"),
    ]
    assert done(rows(events, "2024-04-30", "2024-03-01"), "samma_dag") == (1, 1)
    rules = Rules(WorkCalendar(holidays_are_weekdays=True))
    assert done(rows(events, "2024-04-30", "2024-03-01", rules=rules), "samma_dag") == (1, 0)


# ---------------------------------------------------------------- time zones and DST


@pytest.mark.parametrize(
    ("start", "fulfil", "within"),
    [
        # last Saturday of March 2024: clocks go forward that night
        ("2024-03-30T23:30:00+01:00", "2024-04-02T23:59:00+02:00", 1),
        ("2024-03-30T23:30:00+01:00", "2024-04-03T00:01:00+02:00", 0),
        # last Saturday of October 2024: clocks go back that night
        ("2024-10-26T23:30:00+02:00", "2024-10-29T23:59:00+01:00", 1),
        ("2024-10-26T23:30:00+02:00", "2024-10-30T00:01:00+01:00", 0),
        # the same instants given in UTC land on the same local dates
        ("2024-03-30T22:30:00Z", "2024-04-02T21:59:00Z", 1),
        ("2024-03-30T22:30:00Z", "2024-04-02T22:01:00Z", 0),
    ],
)
def test_dst_days_count_as_calendar_days(start: str, fulfil: str, within: int) -> None:
    events = [
        ev("assessment.needed", "a", start),
        ev("assessment.completed", "a", fulfil, profession="sjukskoterska"),
    ]
    r = rows(events, "2024-12-31", "2024-01-01")
    assert done(r, "tre_dagar") == (1, within)


def test_utc_instant_after_local_midnight_is_next_local_day() -> None:
    # 23:30Z on 30 March is 00:30 on 31 March in Stockholm: started on the 31st
    events = [ev("referral.issued", "r", "2024-03-30T23:30:00Z", pathway="specialist")]
    assert ("besok_90", "ALL") not in rows(events, "2024-03-30")
    assert rows(events, "2024-03-31")[("besok_90", "ALL")]["waiting"] == 1


# ---------------------------------------------------------------- waiting snapshot


def test_waiting_over_limit_from_the_day_after_the_deadline() -> None:
    events = [ev("referral.issued", "r", "2024-01-02T10:00:00+01:00", pathway="specialist")]
    at_deadline = rows(events, "2024-04-01")[("besok_90", "ALL")]
    after = rows(events, "2024-04-02")[("besok_90", "ALL")]
    assert (at_deadline["waiting"], at_deadline["waiting_over_limit"]) == (1, 0)
    assert at_deadline["waiting_ratio"] == 1.0
    assert (after["waiting"], after["waiting_over_limit"]) == (1, 1)
    assert after["waiting_ratio"] == 0.0


def test_events_after_the_snapshot_are_not_taken_into_account() -> None:
    events = [
        ev("referral.issued", "r", "2024-02-01T10:00:00+01:00", pathway="specialist"),
        ev("visit.completed", "r", "2024-03-01T00:30:00+01:00"),
    ]
    feb = rows(events, "2024-02-29")[("besok_90", "ALL")]
    mar = rows(events, "2024-03-31")[("besok_90", "ALL")]
    assert (feb["waiting"], feb["completed"]) == (1, 0)
    assert (mar["waiting"], mar["completed"]) == (0, 1)


def test_no_row_before_the_first_clock_and_null_ratios() -> None:
    events = [ev("referral.issued", "r", "2024-03-10T10:00:00+01:00", pathway="specialist")]
    assert rows(events, "2024-03-09") == {}
    row = rows(events, "2024-03-10")[("besok_90", "ALL")]
    assert row["completed_ratio"] is None
    assert row["waiting_ratio"] == 1.0


# ---------------------------------------------------------------- pauses


def test_pvv_excludes_then_resume_restarts_the_clock() -> None:
    events = [
        ev("referral.issued", "r", "2024-01-02T10:00:00+01:00", pathway="specialist"),
        ev("wait.paused", "r", "2024-02-01T10:00:00+01:00", reason="patient_choice"),
        ev("wait.resumed", "r", "2024-03-01T10:00:00+01:00"),
        # 120 days after the referral but 90 after the restart on 1 March
        ev("visit.completed", "r", "2024-05-30T10:00:00+02:00"),
    ]
    during = rows(events, "2024-02-15", "2024-02-01")[("besok_90", "ALL")]
    assert (during["waiting"], during["excluded"]) == (0, 1)
    assert done(rows(events, "2024-05-31"), "besok_90") == (1, 1)
    events[-1] = ev("visit.completed", "r", "2024-05-31T10:00:00+02:00")  # day 91 after restart
    assert done(rows(events, "2024-05-31"), "besok_90") == (1, 0)


def test_pvv_fulfilment_while_excluded_leaves_it_excluded() -> None:
    events = [
        ev("referral.issued", "r", "2024-01-02T10:00:00+01:00", pathway="specialist"),
        ev("wait.paused", "r", "2024-01-10T10:00:00+01:00", reason="patient_choice"),
        ev("visit.completed", "r", "2024-01-20T10:00:00+01:00"),
    ]
    row = rows(events, "2024-01-31")[("besok_90", "ALL")]
    assert (row["completed"], row["excluded"], row["waiting"]) == (0, 1, 0)


def test_mov_pause_of_10_days_extends_the_deadline() -> None:
    events = [
        ev("referral.issued", "r", "2024-01-02T10:00:00+01:00", pathway="specialist"),
        ev("wait.paused", "r", "2024-02-01T10:00:00+01:00", reason="medical"),
        ev("wait.resumed", "r", "2024-02-11T10:00:00+01:00"),
        ev("visit.completed", "r", "2024-04-11T10:00:00+02:00"),  # day 100 = 90 + 10
    ]
    paused = rows(events, "2024-02-05", "2024-02-01")[("besok_90", "ALL")]
    assert (paused["paused"], paused["waiting"]) == (1, 0)
    assert done(rows(events, "2024-04-30", "2024-04-01"), "besok_90") == (1, 1)
    # at the original deadline + 1 the clock is not yet over its (extended) limit
    assert rows(events, "2024-04-02")[("besok_90", "ALL")]["waiting_over_limit"] == 0
    events[-1] = ev("visit.completed", "r", "2024-04-12T10:00:00+02:00")  # day 101
    assert done(rows(events, "2024-04-30", "2024-04-01"), "besok_90") == (1, 0)


def test_mov_fulfilment_during_pause_ends_the_pause() -> None:
    events = [
        ev("referral.issued", "r", "2024-01-02T10:00:00+01:00", pathway="specialist"),
        ev("wait.paused", "r", "2024-03-25T10:00:00+01:00", reason="medical"),
        ev("visit.completed", "r", "2024-04-10T10:00:00+02:00"),  # day 99, 16 days paused
    ]
    assert done(rows(events, "2024-04-30", "2024-04-01"), "besok_90") == (1, 1)


def test_mov_can_be_set_to_exclude() -> None:
    events = [
        ev("referral.issued", "r", "2024-01-02T10:00:00+01:00", pathway="specialist"),
        ev("wait.paused", "r", "2024-02-01T10:00:00+01:00", reason="medical"),
    ]
    row = rows(events, "2024-02-10", rules=Rules(mov_excludes=True))[("besok_90", "ALL")]
    assert (row["excluded"], row["paused"]) == (1, 0)


def test_pause_for_one_indicator_leaves_the_others_running() -> None:
    events = [
        ev("referral.issued", "b", "2024-03-01T10:00:00+01:00", pathway="bup"),
        ev("decision.made", "b", "2024-03-02T10:00:00+01:00", pathway="bup",
           kind="investigation"),
        ev("wait.paused", "b", "2024-03-05T10:00:00+01:00", reason="medical",
           indicator="bup_besok_30"),
    ]
    r = rows(events, "2024-03-10")
    assert r[("bup_besok_30", "ALL")]["paused"] == 1
    assert r[("bup_utredning_30", "ALL")]["waiting"] == 1


# ---------------------------------------------------------------- transfer, cancel, external


def test_transfer_keeps_the_start_and_moves_the_unit() -> None:
    events = [
        ev("referral.issued", "r", "2024-01-02T10:00:00+01:00", "kop-kir", pathway="specialist"),
        ev("case.transferred", "r", "2024-02-01T10:00:00+01:00", "kop-kir", to_unit_id="vas-ort"),
        ev("visit.completed", "r", "2024-04-02T10:00:00+02:00", "vas-ort"),  # day 91
    ]
    jan = rows(events, "2024-01-31")
    assert jan[("besok_90", "kop-kir")]["waiting"] == 1
    feb = rows(events, "2024-02-29")
    assert feb[("besok_90", "kop-kir")]["waiting"] == 0
    assert feb[("besok_90", "vas-ort")]["waiting"] == 1
    apr = rows(events, "2024-04-30")
    assert done(apr, "besok_90", "vas-ort") == (1, 0)
    assert done(apr, "besok_90", "kop-kir") == (0, 0)


def test_cancelled_clock_is_neither_fulfilled_nor_waiting() -> None:
    events = [
        ev("referral.issued", "r", "2024-01-02T10:00:00+01:00", pathway="specialist"),
        ev("case.cancelled", "r", "2024-03-05T10:00:00+01:00", reason="withdrawn"),
        ev("visit.completed", "r", "2024-03-06T10:00:00+01:00"),
    ]
    row = rows(events, "2024-04-30", "2024-03-01")[("besok_90", "ALL")]
    assert (row["cancelled"], row["completed"], row["waiting"]) == (1, 0, 0)
    # the waiting-over-limit snapshot after the deadline does not see it either
    assert row["waiting_over_limit"] == 0


def test_external_care_fulfils_and_stays_with_the_unit() -> None:
    events = [
        ev("referral.issued", "r", "2024-01-02T10:00:00+01:00", "vas-ort", pathway="specialist"),
        ev("care.external", "r", "2024-03-20T10:00:00+01:00", "privat-klinik"),
    ]
    r = rows(events, "2024-03-31")
    assert done(r, "besok_90", "vas-ort") == (1, 1)
    assert ("besok_90", "privat-klinik") not in r


def test_unlicensed_assessment_leaves_the_clock_open() -> None:
    events = [
        ev("assessment.needed", "a", "2024-03-04T10:00:00+01:00"),
        ev("assessment.completed", "a", "2024-03-05T10:00:00+01:00", profession="underskoterska"),
    ]
    row = rows(events, "2024-03-06")[("tre_dagar", "ALL")]
    assert (row["completed"], row["waiting"]) == (0, 1)
    events.append(
        ev("assessment.completed", "a", "2024-03-08T10:00:00+01:00", profession="psykolog")
    )
    assert done(rows(events, "2024-03-31"), "tre_dagar") == (1, 0)  # day 4


# ---------------------------------------------------------------- events that fit no clock


def test_fulfilment_before_start_is_inconsistent_and_does_not_count() -> None:
    events = [
        ev("visit.completed", "r", "2024-01-01T10:00:00+01:00"),
        ev("referral.issued", "r", "2024-01-02T10:00:00+01:00", pathway="specialist"),
    ]
    (facts,) = facts_by_case(events).values()
    outcome = evaluate(facts, Rules())
    assert [(reason, f.rank) for reason, f in outcome.anomalies] == [(INCONSISTENT, 5)]
    row = rows(events, "2024-01-31")[("besok_90", "ALL")]
    assert (row["completed"], row["waiting"]) == (0, 1)


def test_fulfilment_without_any_start_is_an_orphan() -> None:
    events = [ev("treatment.started", "x", "2024-01-01T10:00:00+01:00")]
    (facts,) = facts_by_case(events).values()
    outcome = evaluate(facts, Rules())
    assert [reason for reason, _ in outcome.anomalies] == [ORPHAN]
    assert rows(events, "2024-01-31") == {}


def test_earliest_start_wins_and_first_fulfilment_wins() -> None:
    events = [
        ev("referral.issued", "r", "2024-01-10T10:00:00+01:00", pathway="specialist"),
        ev("referral.issued", "r", "2024-01-02T10:00:00+01:00", pathway="specialist"),
        ev("visit.completed", "r", "2024-04-05T10:00:00+02:00"),  # day 94 from the 2nd
        ev("visit.completed", "r", "2024-04-01T10:00:00+02:00"),  # day 90: this one
    ]
    assert done(rows(events, "2024-04-30"), "besok_90") == (1, 1)


def test_breach_counted_once_on_the_day_after_the_deadline() -> None:
    from models import measures as m

    events = [
        ev("referral.issued", "r", "2024-01-02T10:00:00+01:00", "a", pathway="specialist"),
        ev("case.transferred", "r", "2024-04-10T10:00:00+02:00", "a", to_unit_id="b"),
        ev("visit.completed", "r", "2024-04-20T10:00:00+02:00", "b"),
    ]
    (facts,) = facts_by_case(events).values()
    breaches = [k for k in evaluate(facts, Rules()).keys if k[0] == m.BREACH]
    assert [(k[2], k[3]) for k in breaches] == [("a", date(2024, 4, 2).toordinal())]
    # fulfilled on day 91: it was open at the end of day 90, so still a breach
    events[1:] = [ev("visit.completed", "r", "2024-04-02T08:00:00+02:00", "a")]
    (facts,) = facts_by_case(events).values()
    assert sum(k[0] == m.BREACH for k in evaluate(facts, Rules()).keys) == 1
