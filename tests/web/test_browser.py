"""The pages in a real browser: headless chromium driven through sign-in, the overview, a
unit page and the worklist export of a running `vardgaranti demo`.

The numbers on the pages are checked against `vardgaranti query` on the demo's store, and
the browser's network log must hold no request to any other host. With
VARDGARANTI_SCREENSHOTS=DIR (`make screenshots`) each page is saved as a PNG there.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support.prometheus import free_port
from web import format as fmt
from web.auth import SESSION_COOKIE

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
TOKEN = "browser-test-token"
YEAR = 2025
SCALE = "0.02"
UNIT = "vas-ortopedi"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        CHROMIUM is None or CHROMEDRIVER is None,
        reason="chromium and chromedriver are not installed (Debian: apt-get install chromium "
        "chromium-driver)",
    ),
]

if CHROMIUM is not None and CHROMEDRIVER is not None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.wait import WebDriverWait


@dataclass(frozen=True)
class Demo:
    base: str
    db: str


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    data = tmp_path_factory.mktemp("demo")
    port = free_port()
    env = {**os.environ, "VARDGARANTI_API_TOKEN": TOKEN}
    proc = subprocess.Popen(
        [sys.executable, "-m", "vardgaranti", "demo", "--scale", SCALE, "--year", str(YEAR),
         "--port", str(port), "--data-dir", str(data)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{base}/readyz", timeout=2).close()
                break
            except OSError:
                time.sleep(0.5)
        assert proc.poll() is None, proc.communicate()[0]
        yield Demo(base, f"sqlite:///{data / f'region-{YEAR}-s{SCALE}-seed1.db'}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    profile = tmp_path_factory.mktemp("chromium-profile")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 f"--user-data-dir={profile}", "--window-size=1280,1000", "--lang=sv-SE"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def query(demo: Demo, *args: str) -> list[dict[str, Any]]:
    """`vardgaranti query … --format json` on the demo's store: the numbers to compare."""
    out = subprocess.run(
        [sys.executable, "-m", "vardgaranti", "query", "--db", demo.db, "--format", "json",
         *args], capture_output=True, text=True, check=True,
    ).stdout
    rows: list[dict[str, Any]] = json.loads(out)["rows"]
    return rows


def requested_urls(driver: Any) -> list[str]:
    """URLs the browser asked for since the last call (the DevTools network log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def shot(driver: Any, name: str) -> None:
    where = os.environ.get("VARDGARANTI_SCREENSHOTS")
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        page = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 0.75}
        png = driver.execute_cdp_cmd(  # the whole page at 3/4 size: small files
            "Page.captureScreenshot",
            {"format": "png", "captureBeyondViewport": True, "clip": page})
        (Path(where) / f"{name}.png").write_bytes(base64.b64decode(png["data"]))


def assert_shown(driver: Any, table: str, rows: dict[str, dict[str, Any]]) -> None:
    """Each indicator's row of the table shows the `query` row, in Swedish formats."""
    for indicator, row in rows.items():
        tr = driver.find_element(By.CSS_SELECTOR, f"#{table} tr[data-indicator='{indicator}']")
        shown = {td.get_attribute("data-field"): visible(td.text)
                 for td in tr.find_elements(By.CSS_SELECTOR, "td[data-field]")}
        assert shown == {
            "completed": visible(fmt.number(row["completed"])),
            "completed_ratio": visible(fmt.share(row["completed_ratio"])),
            "waiting": visible(fmt.number(row["waiting"])),
            "waiting_over_limit": visible(fmt.number(row["waiting_over_limit"])),
            "waiting_ratio": visible(fmt.share(row["waiting_ratio"])),
        }, indicator


def visible(text: str) -> str:
    """Selenium reports the no-break spaces of Swedish numbers as plain spaces."""
    return text.replace("\u00a0", " ").replace("\u202f", " ")


def test_sign_in_overview_unit_worklist_export(
    demo: Demo, browser: Any, tmp_path: Path
) -> None:
    driver = browser
    wait = WebDriverWait(driver, 30)
    urls = requested_urls(driver)  # the browser's own start-up pages (chrome://) count too

    # sign-in: the overview sends a browser without a session to the sign-in page
    driver.get(demo.base + "/")
    assert "/logga-in" in driver.current_url
    shot(driver, "logga-in")
    driver.find_element(By.ID, "token").send_keys(TOKEN)
    driver.find_element(By.ID, "sign-in").click()
    wait.until(lambda d: d.find_elements(By.ID, "overview-table"))
    session = next(c for c in driver.get_cookies() if c["name"] == SESSION_COOKIE)
    assert session["httpOnly"] is True and session["sameSite"] == "Strict"
    assert TOKEN not in session["value"]

    # overview: the year to date, region-wide, as `query` computes it
    assert driver.find_element(By.ID, "synthetic").text == "Syntetiska data"
    assert driver.find_elements(By.CSS_SELECTOR, "svg.chart polyline.this-year")
    newest = _api(demo, "/api/v1/aggregates?unit=ALL")["as_of"]  # the watermark's date
    region = {r["indicator"]: r for r in query(
        demo, "--unit", "ALL", "--from", f"{YEAR}-01-01", "--to", newest)}
    assert len(region) == 7
    assert_shown(driver, "overview-table", region)
    shot(driver, "oversikt")
    urls += requested_urls(driver)

    # units: search, then one unit's page against `query --unit`
    driver.get(demo.base + "/enheter")
    search = driver.find_element(By.ID, "unit-search")
    search.send_keys("Västerås")
    search.submit()
    wait.until(lambda d: "q=" in d.current_url)
    listed = [e.get_attribute("data-unit") for e in
              driver.find_elements(By.CSS_SELECTOR, "tr[data-unit]")]
    assert UNIT in listed and "vc-glasbruket" not in listed  # a Köping unit is filtered out
    shot(driver, "enheter")
    driver.find_element(By.CSS_SELECTOR, f"tr[data-unit='{UNIT}'] a").click()
    wait.until(lambda d: d.find_elements(By.ID, "unit-table"))
    assert driver.find_element(By.TAG_NAME, "h1").text == "Ortopedkliniken Västerås"
    unit_rows = {r["indicator"]: r for r in query(
        demo, "--unit", UNIT, "--from", newest[:8] + "01", "--to", newest)}
    assert unit_rows
    assert_shown(driver, "unit-table", unit_rows)
    shot(driver, "enhet")
    urls += requested_urls(driver)

    # worklist: filter by indicator, then the export as a browser downloads it
    driver.get(demo.base + "/arbetslista")
    Select(driver.find_element(By.ID, "indicator-filter")).select_by_value("besok_90")
    driver.find_element(By.ID, "apply-filter").click()
    wait.until(lambda d: "indikator=besok_90" in d.current_url)
    api = _api(demo, "/api/v1/at-risk?indicator=besok_90&limit=500")
    shown_cases = [e.get_attribute("data-case") for e in
                   driver.find_elements(By.CSS_SELECTOR, "#worklist tr[data-case]")]
    assert shown_cases == [c["case_id"] for c in api["cases"]][:500]
    assert shown_cases, "the demo year should leave first visits near their deadline"
    shot(driver, "arbetslista")
    driver.execute_cdp_cmd("Page.setDownloadBehavior",
                           {"behavior": "allow", "downloadPath": str(tmp_path)})
    driver.find_element(By.ID, "export").click()
    wait.until(lambda d: any(p.suffix == ".csv" for p in tmp_path.iterdir()))
    raw = next(p for p in tmp_path.iterdir() if p.suffix == ".csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel reads the å, ä, ö right
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert table[0][:3] == ["Per", "Dagar kvar", "Sista dag"]
    assert [r[7] for r in table[1:]] == [c["case_id"] for c in api["cases"]]
    assert {r[0] for r in table[1:]} == {api["as_of"]}
    urls += requested_urls(driver)

    # the API documentation renders from the server's own assets
    driver.get(demo.base + "/docs")
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".swagger-ui .info"))
    urls += requested_urls(driver)

    web = [u for u in urls if urlsplit(u).scheme in ("http", "https", "ws", "wss")]
    assert any(u.endswith("/static/docs/swagger-ui-bundle.js") for u in web), web
    assert [u for u in web if not u.startswith(demo.base + "/")] == []


def _api(demo: Demo, path: str) -> dict[str, Any]:
    request = urllib.request.Request(demo.base + path,
                                     headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        body: dict[str, Any] = json.loads(response.read())
    return body
