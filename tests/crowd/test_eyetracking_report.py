"""The eye-tracking report page and its downloads: site tasks made through the study APIs
(PostgreSQL), the imported mini release, permissions, bad input and the admin actions."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pyarrow as pa
import pytest
from django.conf import settings
from django.urls import reverse

from collection.models import CalibrationAttempt, LLMModel, Platform, Task, Topic, Turn
from collection.services.trajectory import trajectory_batch_ingest
from collection.tracker_versions import tracker_versions
from crowd import eyetracking as et
from crowd import services
from crowd.models import TaskQC
from tests.site.conftest import choose, complete_profile, enter_lab
from tests.support.site_tasks import sample_columns, site_task

from .conftest import client_for

pytestmark = pytest.mark.django_db
URL = "crowd:eyetracking_report"
SCREEN = (1366, 768)


def _points(vw: int, vh: int) -> list[dict]:
    """Validation predictions 30 px right of each target with a +-3 px alternating jitter in x:
    accuracy is 30 px at every target and precision (RMS-S2S) exactly 6 px."""
    targets = [(vw / 2, vh / 2, True), (vw / 4, vh / 4, False), (3 * vw / 4, vh / 4, False),
               (vw / 4, 3 * vh / 4, False), (3 * vw / 4, 3 * vh / 4, False)]
    return [{"x": x, "y": y, "centre": c, "frames": 40,
             "samples": [{"x": x + 30 + 3 * (-1) ** i, "y": y, "t": 1000.0 + 33 * i} for i in range(40)]}
            for x, y, c in targets]


def _calibrate(client, environment: dict) -> tuple[Task, object]:
    """A new lab worker's first task, and the answer to its calibration attempt."""
    enter_lab(client)
    complete_profile(client)
    (task,) = choose(client)
    client.get(reverse("collection:calibrate", kwargs={"task_id": task.pk}))
    r = client.post(reverse("collection:api_calibration", kwargs={"task_id": task.pk}), {
        "kind": "calibration", "viewport_w": 1300, "viewport_h": 700, "points": _points(1300, 700),
        "environment": environment,
    }, content_type="application/json")
    return task, r


@pytest.fixture
def study_site(db) -> None:
    for c in "abc":
        LLMModel.objects.create(name=f"demo-{c}", provider="demo", model_id=f"demo-{c}", quota=100, enabled=True)
    for i in range(6):
        Topic.objects.create(title=f"Topic {i}")


@pytest.fixture
def site_flow_task(client, study_site) -> Task:
    """A task that went through the study APIs: calibrated with the screen and camera reported,
    one rated turn, 40 samples 50 ms apart of which 10 without a face."""
    task, r = _calibrate(client, {"screen_w": SCREEN[0], "screen_h": SCREEN[1], "device_pixel_ratio": 1.25,
                                  "camera_w": 640, "camera_h": 480, "camera_fps": 30})
    assert r.status_code == 201 and r.json()["passed"], r.content
    r = client.post(reverse("collection:api_turns", kwargs={"task_id": task.pk}), {"query": "Why?"},
                    content_type="application/json")
    turn = Turn.objects.get(pk=r.json()["id"])
    turn.response_1 = "Because of the words on the screen. " * 5
    turn.save()
    cols = sample_columns(turn=turn, n=40)
    cols["no_face"] = pa.array([i < 10 for i in range(40)])
    trajectory_batch_ingest(task=task, seq=0, columns=cols)
    task.refresh_from_db()
    return task


def test_calibration_stores_the_screen_camera_and_the_served_tracker_versions(site_flow_task) -> None:
    env = CalibrationAttempt.objects.get(task=site_flow_task).environment
    assert env["screen_w"] == 1366 and env["device_pixel_ratio"] == 1.25 and env["camera_w"] == 640
    package = json.loads((Path(settings.BASE_DIR) / "node_modules/webgazer/package.json").read_text())
    assert env["webgazer"] == package["version"] == tracker_versions()["webgazer"]
    assert env["face_mesh"] and env["face_mesh"].startswith("0.")


def test_calibration_environment_bad_input_names_the_field(client, study_site) -> None:
    task, r = _calibrate(client, {"screen_w": "wide", "screen_h": 768})
    assert r.status_code == 400 and "screen_w" in json.dumps(r.json()["environment"])
    assert not CalibrationAttempt.objects.filter(task=task).exists()


def _report(client, **query) -> str:
    r = client.get(reverse(URL), query)
    assert r.status_code == 200, r.content[:500]
    return r


def test_report_page_and_downloads_for_site_tasks(site_flow_task, researcher) -> None:
    other = site_task(name="flagged")  # through the batch service too: 20 Hz, no calibration kept
    services.task_qc_compute(task=other)
    flags = TaskQC.objects.get(task=other).flag_codes()
    assert flags  # no validation stored, so QC flags it
    staff = client_for(researcher)
    page = _report(staff, source="site")
    text = page.content.decode()
    report = page.context["sections"]
    rows = {(s["name"], r["metric"], r["unit"]): r["cells"][0] for s in report for r in s["rows"]}
    assert rows[("Selection", "tasks", "")] == "2"
    assert rows[("Sampling rate", "gaze sampling rate", "Hz")] == "20.0 (20.0–20.0; n=2)"
    assert rows[("Validation accuracy", "top left", "px")] == "30.0 (30.0–30.0; n=1)"
    assert rows[("Precision (RMS-S2S)", "centre", "px")] == "6.0 (6.0–6.0; n=1)"
    k = et.cm_per_css_px(*SCREEN, diagonal_in=15.6)
    deg = et.px_to_deg(30, cm_per_px=k, distance_cm=60)
    assert rows[("Validation accuracy", "all targets", "°")] == f"{deg:.1f} ({deg:.1f}–{deg:.1f}; n=1)"
    assert rows[("Tracker", "camera resolution", "px")] == "640×480 at 30 frames/s (1 task)"
    assert rows[("Tracker", "WebGazer version", "")] == f"{tracker_versions()['webgazer']} (1 task)"
    assert rows[("Data loss", "frames without a face or a prediction", "share")].startswith("12.5 % (0.0 %–25.0 %")
    assert rows[("Exclusions", "QC computed", "")] == "1 of 2 tasks"
    for code in flags:
        label = dict(services.eyetracking.REPORT_RULES)[code]
        assert rows[("Exclusions", f"QC rule: {label}", "")].startswith("1 tasks, 1 workers")
    assert "not recorded in the release" not in text  # no release task selected
    # the same figures as Markdown and CSV, with the assumptions written in
    md = staff.get(reverse(URL), {"source": "site", "viewing_distance_cm": 50, "format": "md"})
    assert md.status_code == 200 and md["Content-Disposition"].startswith("attachment;")
    body = md.content.decode()
    assert "Viewing distance assumed: 50 cm" in body and "| gaze sampling rate | Hz | 20.0 (20.0–20.0; n=2) |" in body
    deg50 = et.px_to_deg(30, cm_per_px=k, distance_cm=50)
    assert f"| all targets | ° | {deg50:.1f} " in body
    c = staff.get(reverse(URL), {"source": "site", "format": "csv"})
    assert c["Content-Type"].startswith("text/csv") and 'filename="eyetracking-report.csv"' in c["Content-Disposition"]
    lines = list(csv.DictReader(io.StringIO(c.content.decode())))
    acc = next(r for r in lines
               if (r["section"], r["metric"], r["unit"]) == ("Validation accuracy", "centre", "px"))
    assert (acc["group"], float(acc["median"]), acc["n"]) == ("site", 30.0, "1")


def test_report_for_the_imported_mini_release(mini_release, viewer) -> None:
    staff = client_for(viewer)  # read-only role: may read the report
    page = _report(staff, source="release")
    rows = {(s["name"], r["metric"], r["unit"]): r["cells"] for s in page.context["sections"] for r in s["rows"]}
    assert page.context["groups"] == ["Imported release"]
    n_workers = Task.objects.filter(worker__platform=Platform.RELEASE, chunks__isnull=False).values(
        "worker").distinct().count()
    assert rows[("Selection", "workers", "")] == [str(n_workers)] and n_workers == 3
    for key in (("Tracker", "WebGazer version", ""), ("Tracker", "camera resolution", "px"),
                ("Validation accuracy", "all targets", "px"), ("Precision (RMS-S2S)", "all targets", "°")):
        assert rows[key] == [et.NOT_IN_RELEASE]
    assert rows[("Data loss", "frames without a face or a prediction", "share")][0].startswith(et.NOT_IN_RELEASE)
    rate = rows[("Sampling rate", "gaze sampling rate", "Hz")][0]
    median = float(rate.split(" ")[0])
    assert 5 < median < 30 and rate.endswith(f"n={Task.objects.filter(chunks__isnull=False).distinct().count()})")
    assert rows[("Data loss", "recording time in pauses ≥ 2 s", "share")][0].endswith("%" + rate[rate.index(";"):])
    md = staff.get(reverse(URL), {"source": "release", "format": "md"}).content.decode()
    assert md.count(et.NOT_IN_RELEASE) >= 8 and "| gaze sampling rate | Hz | " + rate + " |" in md


def test_selection_by_task_ids_and_dates(site_flow_task, researcher) -> None:
    other = site_task(name="other")
    staff = client_for(researcher)
    page = _report(staff, tasks=f"{other.pk}")
    assert page.context["selection"].task_ids == (other.pk,)
    rows = {(s["name"], r["metric"]): r["cells"] for s in page.context["sections"] for r in s["rows"]}
    assert rows[("Selection", "tasks")] == ["1"]
    page = _report(staff, date_from="2000-01-01", date_to="2000-01-02")
    assert page.context["groups"] == []


@pytest.mark.parametrize(("query", "field"), [
    ({"tasks": "3,abc"}, "tasks"), ({"viewing_distance_cm": "-5"}, "viewing_distance_cm"),
    ({"date_from": "2026-02-01", "date_to": "2026-01-01"}, "date_to"), ({"platform": "myspace"}, "platform"),
])
def test_bad_input_is_a_400_naming_the_field(researcher, query, field) -> None:
    staff = client_for(researcher)
    r = staff.get(reverse(URL), query)
    assert r.status_code == 400 and field in r.context["form"].errors
    r = staff.get(reverse(URL), {**query, "format": "csv"})
    assert r.status_code == 400 and r.content.decode().startswith(f"{field}:")
    assert staff.get(reverse(URL), {"format": "pdf"}).status_code == 400


def test_report_needs_a_staff_role(staff_no_role, plain_user) -> None:
    assert client_for(None).get(reverse(URL)).status_code == 302  # to the admin login
    assert client_for(plain_user).get(reverse(URL)).status_code == 302
    assert client_for(staff_no_role).get(reverse(URL)).status_code == 403
    assert client_for(staff_no_role).get(reverse(URL), {"format": "csv"}).status_code == 403


def test_admin_actions_open_the_report_for_the_selected_tasks(site_flow_task, researcher, viewer) -> None:
    other = site_task(name="other")
    services.task_qc_compute(task=other)
    staff = client_for(researcher)
    r = staff.post(reverse("admin:collection_task_changelist"),
                   {"action": "eyetracking_report_tasks", "_selected_action": [site_flow_task.pk, other.pk]})
    ids = sorted([site_flow_task.pk, other.pk])
    assert r.status_code == 302 and r["Location"] == f"{reverse(URL)}?tasks={ids[0]}%2C{ids[1]}"
    qc = TaskQC.objects.get(task=other)
    r = client_for(viewer).post(reverse("admin:crowd_taskqc_changelist"),
                                {"action": "eyetracking_report_qc", "_selected_action": [qc.pk]})
    assert r.status_code == 302 and r["Location"] == f"{reverse(URL)}?tasks={other.pk}"
    page = client_for(viewer).get(r["Location"])
    assert page.status_code == 200 and page.context["selection"].task_ids == (other.pk,)


def test_the_command_prints_the_same_report(site_flow_task, tmp_path) -> None:
    from django.core.management import CommandError, call_command

    out = io.StringIO()
    call_command("eyetracking_report", "--source", "site", stdout=out, stderr=io.StringIO())
    assert "| gaze sampling rate | Hz | 20.0 (20.0–20.0; n=1) |" in out.getvalue()
    path = tmp_path / "r.csv"
    call_command("eyetracking_report", "--format", "csv", "--out", str(path), "--viewing-distance-cm", "70",
                 stderr=io.StringIO())
    assert "viewing_distance_cm,,,70.0" in path.read_text()
    with pytest.raises(CommandError, match="viewing_distance_cm"):
        call_command("eyetracking_report", "--viewing-distance-cm", "0", stderr=io.StringIO())
    with pytest.raises(CommandError, match="--study"):
        call_command("eyetracking_report", "--study", "999", stderr=io.StringIO())


def test_replay_page_says_which_box_layout_it_draws(mini_release, researcher) -> None:
    staff = client_for(researcher)
    release_turn = Turn.objects.filter(task__worker__platform=Platform.RELEASE, task__chunks__isnull=False).first()
    r = staff.get(reverse("crowd:replay", args=[release_turn.pk]))
    assert r.status_code == 200
    assert {b["layout"]["source"] for b in r.context["replay"]["boxes"]} == {"estimated"}
    site = site_task(name="replayed")
    turn = site.turns.first()
    r = staff.get(reverse("crowd:replay", args=[turn.pk]))
    (box,) = r.context["replay"]["boxes"]
    assert (box["layout"]["source"], box["layout"]["width"]) == ("samples", 600.0)  # site_task logs 600 px boxes
    turn.box_layout = {"1": {"width": 640.0, "height": 396.0, "client_width": 623.0, "client_height": 394.0,
                             "font_family": "Georgia", "font_size_px": 24.3, "line_height_px": 42.5,
                             "padding": [18, 21.6, 18, 21.6], "border": [1, 1, 1, 1]}}
    turn.save()
    (box,) = staff.get(reverse("crowd:replay", args=[turn.pk])).context["replay"]["boxes"]
    assert (box["layout"]["source"], box["layout"]["width"]) == ("recorded", 640.0)
