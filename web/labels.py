"""Swedish and English words of the pages, the export and the terminal tables.

Swedish first: the words the Vårdgarantienhet and the clinics use. Indicator names come
from models.indicators, unit names from models.region.
"""

from __future__ import annotations

from models.indicators import BY_ID, REGION_UNIT
from models.region import UNITS_BY_ID, unit_name
from web.format import Lang

_WORDS: dict[str, tuple[str, str]] = {
    "app": ("Vårdgarantin", "Care guarantee"),
    "overview": ("Översikt", "Overview"),
    "units": ("Enheter", "Units"),
    "worklist": ("Arbetslista", "Worklist"),
    "api_docs": ("API", "API"),
    "sign_in": ("Logga in", "Sign in"),
    "sign_out": ("Logga ut", "Sign out"),
    "token": ("API-token", "API token"),
    "token_help": ("Token från den som driftar tjänsten (VARDGARANTI_API_TOKEN).",
                   "The token from whoever runs the service (VARDGARANTI_API_TOKEN)."),
    "wrong_token": ("Fel token.", "Wrong token."),
    "synthetic": ("Syntetiska data", "Synthetic data"),
    "synthetic_help": ("Påhittade händelser för demonstration, inga riktiga patienter.",
                       "Made-up events for demonstration, no real patients."),
    "data_until": ("Data till och med", "Data up to"),
    "no_data": ("Inga händelser ännu.", "No events yet."),
    "indicator": ("Vårdgaranti", "Guarantee"),
    "all_indicators": ("Alla", "All"),
    "unit": ("Enhet", "Unit"),
    "all_units": ("Alla enheter", "All units"),
    "region": ("Hela regionen", "Whole region"),
    "group": ("Grupp", "Group"),
    "completed": ("Genomförda", "Completed"),
    "within": ("Inom gränsen", "Within limit"),
    "share_within": ("Andel inom gränsen", "Share within limit"),
    "target": ("Mål", "Target"),
    "report": ("Årsrapport", "Annual report"),
    "waiting": ("Väntande", "Waiting"),
    "over_limit": ("Över gränsen", "Over limit"),
    "vgv": ("Vårdgarantivärde", "Guarantee value"),
    "paused": ("Pausade", "Paused"),
    "excluded": ("Undantagna", "Excluded"),
    "cancelled": ("Avbrutna", "Cancelled"),
    "year_to_date": ("Hittills i år", "Year to date"),
    "as_of": ("Per", "As of"),
    "from": ("Från", "From"),
    "to": ("Till", "To"),
    "window": ("Fönster", "Window"),
    "month": ("Innevarande månad", "This month"),
    "7d": ("7 dagar", "7 days"),
    "30d": ("30 dagar", "30 days"),
    "90d": ("90 dagar", "90 days"),
    "365d": ("365 dagar", "365 days"),
    "monthly": ("Andel inom gränsen per månad", "Share within limit per month"),
    "search": ("Sök", "Search"),
    "filter": ("Visa", "Show"),
    "search_placeholder": ("namn, ort eller id", "name, town or id"),
    "kind_all": ("Alla grupper", "All groups"),
    "vardcentral": ("Vårdcentraler", "Primary care centres"),
    "clinic": ("Sjukhusens kliniker", "Hospital clinics"),
    "bup": ("BUP", "Child psychiatry"),
    "other": ("Övriga", "Other"),
    "hospital": ("Sjukhuset i {}", "{} hospital"),
    "no_units": ("Ingen enhet matchar.", "No unit matches."),
    "unknown_unit": ("Enheten finns inte", "No such unit"),
    "deadline": ("Sista dag", "Deadline"),
    "days_left": ("Dagar kvar", "Days left"),
    "started": ("Startad", "Started"),
    "case": ("Ärende", "Case"),
    "patient_ref": ("Patientreferens", "Patient reference"),
    "worklist_help": ("Öppna vårdgarantier som snart passerar sista dag, mest bråttom först.",
                      "Open clocks close to their deadline, most urgent first."),
    "worklist_empty": ("Inga ärenden nära sista dag.", "No cases close to their deadline."),
    "export": ("Exportera till Excel (CSV)", "Export for Excel (CSV)"),
    "shown": ("Visar", "Showing"),
    "open_worklist": ("Enhetens arbetslista", "The unit's worklist"),
    "language": ("In English", "På svenska"),
    "waiting_at_end": ("väntande vid dagens slut {}", "waiting at the end of {}"),
    "suppressed_note": ("{} = färre än {} fall, visas inte", "{} = fewer than {} cases, not shown"),
    "worst_units": ("Enheter med flest väntande över gränsen",
                    "Units with the most patients waiting over the limit"),
}


def t(key: str, lang: Lang = "sv") -> str:
    sv, en = _WORDS[key]
    return en if lang == "en" else sv


def indicator_name(indicator_id: str, lang: Lang = "sv") -> str:
    ind = BY_ID[indicator_id]
    return ind.name_en if lang == "en" else ind.name_sv


def unit_label(unit_id: str, lang: Lang = "sv") -> str:
    """The unit's name; the region-wide row is "Hela regionen"."""
    return t("region", lang) if unit_id == REGION_UNIT else unit_name(unit_id)


def unit_group(unit_id: str, lang: Lang = "sv") -> str:
    """Where a unit belongs: the hospital of a clinic, the town of a vårdcentral."""
    unit = UNITS_BY_ID.get(unit_id)
    if unit is None:
        return t("other", lang)
    if unit.kind == "vardcentral":
        return f"{t('vardcentral', lang)} {unit.town}"
    if unit.kind == "bup":
        return t("bup", lang)
    return t("hospital", lang).format(unit.hospital)
