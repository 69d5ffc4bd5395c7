"""How long a worker waits for the eye tracker's files, with and without the instructions' prefetch.

Real Chromium (fake camera) against the site under uvicorn (a throwaway SQLite database), on a
line throttled by Chromium's DevTools network emulation. Two browsers (fresh contexts: empty HTTP
caches) enter the study and reach the calibration page:

* ``cold``: the instructions page's prefetch is blocked, so the calibration page downloads the
  files itself (its progress bar shows it), as before the change every worker did after Start;
* ``prefetched``: the worker reads the instructions while the files download (the time printed is
  how long the reading must last to cover it), then the calibration page finds them in the cache.

Printed per scenario: seconds until the calibration page has the files, seconds from Start to
the first calibration dot (WebGazer loaded and started), and bytes over the network on the
calibration page (Resource Timing).

    .venv/bin/python benchmarks/tracker_load.py [--mbit 4] [--runs 1]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ENTRIES = """() => performance.getEntriesByType('resource')
  .filter((e) => e.name.includes('/static/vendor/webgazer/')).reduce((s, e) => s + e.transferSize, 0)"""


def _setup() -> None:
    db = Path(tempfile.mkdtemp(prefix="tracker-bench-")) / "db.sqlite3"
    os.environ["DATABASE_URL"] = f"sqlite:///{db}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ifllm_site.settings")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from collection.models import LLMModel, Topic

    for i in range(3):
        Topic.objects.create(title=f"Bench topic {i}")
    LLMModel.objects.create(name="demo-a", provider="demo", model_id="demo-a", enabled=True)
    LLMModel.objects.create(name="demo-b", provider="demo", model_id="demo-b", enabled=True)


def _enter(page, worker_id: str) -> None:
    """A lab participant with consent and profile given: invitation, topic, instructions."""
    from django.urls import reverse

    from collection.services import identity, study

    worker = identity.lab_participant_create(participant_id=worker_id)
    study.worker_consent_give(worker=worker, consent=True)
    study.worker_demographics_set(worker=worker, age=40, location="X", education="master", race="prefer_not",
                                  gender="female")
    page.goto(reverse("collection:join", kwargs={"token": identity.invitation_create(worker=worker).token}))
    page.get_by_role("button", name="Start").click()
    page.locator('input[name="topics"]').nth(0).check()
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(re.compile(r"/instructions/$"))


def _scenario(browser, base_url: str, name: str, bytes_per_s: float, n: int) -> dict:
    context = browser.new_context(viewport={"width": 1366, "height": 768}, base_url=base_url)
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    vendor = re.compile(r"/static/vendor/webgazer/")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 40,
                                                  "downloadThroughput": bytes_per_s, "uploadThroughput": -1})
    if name == "cold":
        page.route(vendor, lambda route: route.abort())
    _enter(page, f"{name}-{n}")
    reading_s = None
    if name == "prefetched":
        # Since the instructions page began to load (its clock): the prefetch on the throttled line.
        page.wait_for_selector('#tracker-loading[data-state="done"]', timeout=600_000)
        reading_s = page.evaluate("performance.now()") / 1000
        page.get_by_role("button", name="I have read the instructions").click()
    else:
        page.get_by_role("button", name="I have read the instructions").click()
        page.wait_for_url(re.compile(r"/calibrate/$"))
        url = page.url
        page.goto("about:blank")  # nothing of the blocked pages stays in flight
        page.unroute(vendor)
        page.goto(url)
    t0 = time.monotonic()
    page.wait_for_url(re.compile(r"/calibrate/$"))
    page.wait_for_selector('#tracker-loading[data-state="done"]', timeout=600_000)
    files_s = time.monotonic() - t0
    t1 = time.monotonic()
    page.get_by_role("button", name="Start").click()
    page.wait_for_selector(".calib-point", timeout=600_000)
    start_s = time.monotonic() - t1
    sent = page.evaluate(ENTRIES)
    context.close()
    return {"reading_s": reading_s, "files_s": files_s, "start_s": start_s, "sent": sent}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mbit", type=float, default=4.0, help="download speed, Mbit/s")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    _setup()
    from playwright.sync_api import sync_playwright

    from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
    from tests.support.servers import uvicorn_in_thread

    bytes_per_s = args.mbit * 1e6 / 8
    print(f"line: {args.mbit} Mbit/s ({bytes_per_s / 1e3:.0f} kB/s), 40 ms latency; load average "
          f"{os.getloadavg()[0]:.1f}")
    print(f"{'scenario':<11} {'run':>3} {'reading s':>9} {'calib. page s':>13} {'Start->dots s':>13} "
          f"{'MB over network (calib.)':>25}")
    with uvicorn_in_thread() as base_url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        for n in range(args.runs):
            for name in ("cold", "prefetched"):
                r = _scenario(browser, base_url, name, bytes_per_s, n)
                reading = "-" if r["reading_s"] is None else f"{r['reading_s']:.1f}"
                print(f"{name:<11} {n:>3} {reading:>9} {r['files_s']:>13.1f} {r['start_s']:>13.1f} "
                      f"{r['sent'] / 1e6:>25.2f}", flush=True)
        browser.close()


if __name__ == "__main__":
    main()
