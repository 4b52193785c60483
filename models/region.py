"""The synthetic region: a made-up county "like Västmanland": its units, names and groupings.

Pure data. The unit names are invented (they are not the real vårdcentraler of the region),
the towns and hospitals are the real ones so the demo reads naturally. `performance` is a
logit offset on the chance that a unit meets the guarantee; the generator recentres the
offsets so the region as a whole still lands on last year's figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

UnitKind = Literal["vardcentral", "clinic", "bup"]
Operator = Literal["region", "private"]

NARA_VARD = "Nära vård"
AKUT = "Akutsjukvård"
DIAGNOSTIK = "Diagnostik"
PSYKIATRI = "Psykiatri"

HOSPITALS: tuple[str, ...] = ("Västerås", "Köping", "Fagersta", "Sala")


@dataclass(frozen=True, slots=True)
class Unit:
    id: str
    name: str
    kind: UnitKind
    town: str
    # hospital the clinic or BUP unit belongs to; None for vårdcentraler
    hospital: str | None
    area: str
    operator: Operator
    # relative volume within its kind (listed patients, referral inflow)
    size: float
    # logit offset on the chance of fulfilling within the limit; > 0 is better
    performance: float
    # clinics of the same specialty at other hospitals can take over a referral
    specialty: str = ""
    # share of first visits that end in a decision to operate/treat (atgard_90)
    treatment_share: float = 0.0


def _vc(
    id_: str, name: str, town: str, operator: Operator, size: float, perf: float,
) -> Unit:
    return Unit(id_, name, "vardcentral", town, None, NARA_VARD, operator, size, perf)


def _clinic(
    id_: str, name: str, hospital: str, specialty: str, size: float, perf: float,
    treatment_share: float, area: str = AKUT,
) -> Unit:
    return Unit(
        id_, name, "clinic", hospital, hospital, area, "region", size, perf, specialty,
        treatment_share,
    )


def _bup(id_: str, name: str, town: str, size: float, perf: float) -> Unit:
    return Unit(id_, name, "bup", town, town, PSYKIATRI, "region", size, perf, "bup")


VARDCENTRALER: tuple[Unit, ...] = (
    _vc("vc-malarbacken", "Vårdcentralen Mälarbacken", "Västerås", "region", 1.3, 0.35),
    _vc("vc-svartastrand", "Hälsocentralen Svartåstrand", "Västerås", "private", 1.1, 0.55),
    _vc("vc-lindangen", "Vårdcentralen Lindängen", "Västerås", "region", 1.2, -0.30),
    _vc("vc-bjorkvallen", "Vårdcentralen Björkvallen", "Västerås", "region", 1.0, 0.10),
    _vc("vc-ronnbergsgarden", "Vårdcentralen Rönnbergsgården", "Västerås", "region", 0.9,
        -0.55),
    _vc("vc-tallasen", "Familjeläkarna Tallåsen", "Västerås", "private", 0.7, 0.40),
    _vc("vc-hagaberg", "Vårdcentralen Hagaberg", "Västerås", "region", 1.1, -0.10),
    _vc("vc-skogsangen", "Vårdcentralen Skogsängen", "Västerås", "region", 0.8, 0.20),
    _vc("vc-ekbacken", "Läkarhuset Ekbacken", "Västerås", "private", 0.9, 0.30),
    _vc("vc-kalltorpet", "Vårdcentralen Källtorpet", "Västerås", "region", 1.0, -0.40),
    _vc("vc-solvandan", "Hälsocentralen Solvändan", "Västerås", "private", 0.6, 0.65),
    _vc("vc-kvarnbacken", "Vårdcentralen Kvarnbacken", "Västerås", "region", 1.2, 0.00),
    _vc("vc-stadsparken", "Vårdcentralen Stadsparken", "Västerås", "region", 1.4, -0.20),
    _vc("vc-hamnporten", "Läkarhuset Hamnporten", "Västerås", "private", 0.8, 0.15),
    _vc("vc-kopingsgarden", "Vårdcentralen Köpingsgården", "Köping", "region", 1.1, -0.25),
    _vc("vc-glasbruket", "Familjeläkarna Glasbruket", "Köping", "private", 0.6, 0.45),
    _vc("vc-akerbo", "Vårdcentralen Åkerbo", "Köping", "region", 0.7, 0.05),
    _vc("vc-arbogaan", "Vårdcentralen Arbogaån", "Arboga", "region", 0.9, -0.15),
    _vc("vc-kungsorstorg", "Vårdcentralen Kungsörs torg", "Kungsör", "region", 0.6, 0.25),
    _vc("vc-kanalen", "Vårdcentralen Kanalen", "Hallstahammar", "region", 0.9, -0.35),
    _vc("vc-kolbacksan", "Hälsocentralen Kolbäcksån", "Hallstahammar", "private", 0.5, 0.20),
    _vc("vc-bruksgatan", "Vårdcentralen Bruksgatan", "Surahammar", "region", 0.7, -0.05),
    _vc("vc-brukshagen", "Vårdcentralen Brukshagen", "Fagersta", "region", 0.9, -0.60),
    _vc("vc-kolarbyn", "Familjeläkarna Kolarbyn", "Fagersta", "private", 0.5, 0.30),
    _vc("vc-gruvberget", "Vårdcentralen Gruvberget", "Norberg", "region", 0.5, -0.20),
    _vc("vc-silvergruvan", "Vårdcentralen Silvergruvan", "Sala", "region", 1.0, 0.10),
    _vc("vc-stadsskogen", "Hälsocentralen Stadsskogen", "Sala", "private", 0.6, 0.35),
)

CLINICS: tuple[Unit, ...] = (
    _clinic("vas-ortopedi", "Ortopedkliniken Västerås", "Västerås", "ortopedi", 1.6, -0.45,
            0.35),
    _clinic("vas-kirurgi", "Kirurgkliniken Västerås", "Västerås", "kirurgi", 1.5, -0.15, 0.33),
    _clinic("vas-ogon", "Ögonkliniken Västerås", "Västerås", "ogon", 1.2, -0.30, 0.40),
    _clinic("vas-onh", "Öron-, näs- och halskliniken Västerås", "Västerås", "onh", 1.0, -0.55,
            0.25),
    _clinic("vas-hud", "Hudkliniken Västerås", "Västerås", "hud", 0.9, -0.70, 0.15),
    _clinic("vas-kvinno", "Kvinnokliniken Västerås", "Västerås", "kvinno", 1.0, 0.25, 0.25),
    _clinic("vas-urologi", "Urologkliniken Västerås", "Västerås", "urologi", 0.7, -0.35,
            0.30),
    _clinic("vas-neurologi", "Neurologkliniken Västerås", "Västerås", "neurologi", 0.6,
            -0.25, 0.05),
    _clinic("vas-medicin", "Medicinkliniken Västerås", "Västerås", "medicin", 1.3, 0.30, 0.08),
    _clinic("vas-kardiologi", "Hjärtkliniken Västerås", "Västerås", "kardiologi", 0.8, 0.15,
            0.12),
    _clinic("vas-klinfys", "Klinisk fysiologi Västerås", "Västerås", "klinfys", 0.6, 0.50,
            0.0, DIAGNOSTIK),
    _clinic("kop-kirurgi", "Kirurgmottagningen Köping", "Köping", "kirurgi", 0.6, 0.35, 0.30),
    _clinic("kop-ortopedi", "Ortopedmottagningen Köping", "Köping", "ortopedi", 0.6, 0.20,
            0.35),
    _clinic("kop-medicin", "Medicinkliniken Köping", "Köping", "medicin", 0.6, 0.40, 0.08),
    _clinic("fag-kirurgi", "Kirurgmottagningen Fagersta", "Fagersta", "kirurgi", 0.4, 0.10,
            0.28),
    _clinic("fag-ortopedi", "Ortopedmottagningen Fagersta", "Fagersta", "ortopedi", 0.4,
            -0.10, 0.30),
    _clinic("fag-medicin", "Medicinkliniken Fagersta", "Fagersta", "medicin", 0.5, 0.25, 0.08),
    _clinic("sal-medicin", "Medicinkliniken Sala", "Sala", "medicin", 0.5, 0.45, 0.08),
    _clinic("sal-geriatrik", "Geriatriska kliniken Sala", "Sala", "geriatrik", 0.3, 0.60,
            0.03),
)

BUP_UNITS: tuple[Unit, ...] = (
    _bup("bup-vasteras", "BUP Västerås", "Västerås", 0.55, -0.20),
    _bup("bup-koping", "BUP Köping", "Köping", 0.15, 0.30),
    _bup("bup-fagersta", "BUP Fagersta", "Fagersta", 0.12, 0.10),
    _bup("bup-sala", "BUP Sala", "Sala", 0.18, 0.35),
)

UNITS: tuple[Unit, ...] = VARDCENTRALER + CLINICS + BUP_UNITS
UNITS_BY_ID: dict[str, Unit] = {u.id: u for u in UNITS}


def unit_name(unit_id: str) -> str:
    """The unit's name, or its id when the region does not know it (e.g. another log)."""
    unit = UNITS_BY_ID.get(unit_id)
    return unit.name if unit is not None else unit_id
