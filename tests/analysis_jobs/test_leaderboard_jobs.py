"""The leaderboard through Django: job on the cpu queue, staff page, downloads, admin, command."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import CommandError, call_command

from analysis.leaderboard_services import leaderboard_start
from analysis.models import Leaderboard, RewardModelRun, RewardPrediction
from collection.models import Turn
from jobs.models import Job
from tests.support.leaderboard_sim import store_simulated_votes
from tests.support.paths import MINI

pytestmark = pytest.mark.django_db

STRENGTHS = {"alpha-7b": 0.0, "beta\r\n-13b": 0.8, "gamma-70b": 1.6}  # one name stored with a CRLF


@pytest.fixture
def votes_in_db() -> list[Turn]:
    """Pairwise turns of 12 workers voted with planted strengths (one task per worker)."""
    return store_simulated_votes(STRENGTHS)


@pytest.fixture
def reward_run(votes_in_db: list[Turn]) -> RewardModelRun:
    """A reward-model run whose predictions equal the workers' votes (implicit = explicit)."""
    run = RewardModelRun.objects.create(name="oracle")
    RewardPrediction.objects.bulk_create([
        RewardPrediction(run=run, turn=t, model_name="RF + IF", protocol="grouped", prob_1=float(t.preferred == 1),
                         predicted=t.preferred, p_winner=1.0, label=t.preferred)
        for t in votes_in_db
    ])
    return run


def _run_job(board: Leaderboard, capture) -> Job:
    with capture(execute=True):
        job = leaderboard_start(leaderboard=board)
    job.refresh_from_db()
    board.refresh_from_db()
    return job


def test_job_on_cpu_queue_stores_every_source_with_plot(reward_run, django_capture_on_commit_callbacks) -> None:
    board = Leaderboard.objects.create(sources=["explicit", "implicit", "mixed"], rounds=100)
    job = _run_job(board, django_capture_on_commit_callbacks)
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert (job.kind, job.queue) == ("analysis.leaderboard", "cpu")
    assert board.job_id == job.pk and board.reward_run_id == reward_run.pk and board.n_votes == 300
    sources = {s["source"]: s for s in board.results["sources"]}
    assert [s["source"] for s in board.results["sources"]] == ["explicit", "implicit", "mixed"]
    ranked = [r["model"] for r in sources["explicit"]["raw"]]
    assert ranked == ["gamma-70b", "beta-13b", "alpha-7b"]  # planted order, CRLF name cleaned
    assert sources["implicit"]["agreement_raw"]["tau"] == 1.0
    assert {c["covariate"] for c in sources["explicit"]["style_coefficients"]} >= {"length", "bullet suffix × lists"}
    assert bytes(board.png[:8]) == b"\x89PNG\r\n\x1a\n" and "<svg" in board.svg
    assert board.csv.startswith("source,control,rank,model")
    assert "gamma-70b" in job.log_tail


def test_page_says_when_mixed_adds_no_votes_and_marks_implicit_votes(
    admin_client, reward_run, django_capture_on_commit_callbacks
) -> None:
    """Every prediction is on a voted turn (as on the release): mixed is the explicit board, and the
    page says so instead of showing τ = 1.00 [1.00, 1.00] as a finding."""
    board = Leaderboard.objects.create(sources=["explicit", "implicit", "mixed"], rounds=60)
    _run_job(board, django_capture_on_commit_callbacks)
    text = admin_client.get(f"/analysis/leaderboard/?pk={board.pk}").content.decode()
    mixed = text.split("<h3>Mixed (explicit where voted")[1]
    assert "Mixed adds no votes" in mixed and "by construction" in mixed
    assert "Kendall τ" not in mixed.split("<h3>")[0]  # no agreement line for the mixed board
    assert "fitted to predicted probabilities" not in mixed.split("<h3>")[0]  # its votes are the workers'
    implicit = text.split("Reward-model predictions (implicit)</h3>")[1].split("<h3>")[0]
    assert "do not include the reward model" in implicit and "Kendall τ" in implicit
    assert "another scale" in implicit
    explicit = text.split("Explicit preferences</h3>")[1].split("<h3>")[0]
    assert "lb-warning" not in explicit
    # must fail the note: a turn without an explicit vote gives mixed one vote more
    Turn.objects.filter(pk=reward_run.predictions.first().turn_id).update(preferred=None)
    again = Leaderboard.objects.create(sources=["explicit", "mixed"], rounds=60)
    _run_job(again, django_capture_on_commit_callbacks)
    text = admin_client.get(f"/analysis/leaderboard/?pk={again.pk}").content.decode()
    assert "Mixed adds no votes" not in text and "Mixed adds 1 implicit votes" in text


def test_page_and_downloads_are_staff_only(admin_client, client, votes_in_db, django_capture_on_commit_callbacks) -> None:  # noqa: E501
    board = Leaderboard.objects.create(sources=["explicit"], rounds=60)
    _run_job(board, django_capture_on_commit_callbacks)
    for url in ("/analysis/leaderboard/", f"/analysis/leaderboard/{board.pk}.csv"):
        assert client.get(url).status_code == 302
    page = admin_client.get("/analysis/leaderboard/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "gamma-70b" in text and f"/analysis/leaderboard/{board.pk}.png" in text and "length" in text
    csv = admin_client.get(f"/analysis/leaderboard/{board.pk}.csv")
    assert csv["Content-Type"] == "text/csv" and b"explicit,raw,1,gamma-70b" in csv.content
    data = json.loads(admin_client.get(f"/analysis/leaderboard/{board.pk}.json").content)
    assert data["sources"][0]["source"] == "explicit" and data["sources"][0]["votes"] == 300
    assert admin_client.get(f"/analysis/leaderboard/{board.pk}.png")["Content-Type"] == "image/png"
    assert admin_client.get("/analysis/leaderboard/?pk=999999").status_code == 404
    assert b"Model leaderboard" in admin_client.get("/analysis/").content


def test_bad_input_gets_a_400_naming_the_field(admin_client) -> None:
    bad = admin_client.get("/analysis/leaderboard/?pk=abc")
    assert bad.status_code == 400 and b"pk" in bad.content
    bad = admin_client.post("/analysis/leaderboard/", {"sources": ["bogus"]})
    assert bad.status_code == 400 and b"sources" in bad.content
    bad = admin_client.post("/analysis/leaderboard/", {"sources": ["explicit"], "rounds": "5"})
    assert bad.status_code == 400 and b"rounds" in bad.content
    assert not Leaderboard.objects.exists()


def test_a_viewer_cannot_start_jobs(client, votes_in_db) -> None:
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_leaderboard"))
    client.force_login(viewer)
    assert client.get("/analysis/leaderboard/").status_code == 200
    assert b'name="sources"' not in client.get("/analysis/leaderboard/").content
    assert client.post("/analysis/leaderboard/", {"sources": ["explicit"]}).status_code == 403
    assert client.get("/admin/analysis/leaderboard/add/").status_code == 403
    assert not Job.objects.exists() and not Leaderboard.objects.exists()


def test_staff_with_the_add_permission_start_a_job_from_the_page(client, votes_in_db, django_capture_on_commit_callbacks) -> None:  # noqa: E501
    analyst = User.objects.create_user("analyst", password="pw", is_staff=True)
    analyst.user_permissions.add(*Permission.objects.filter(codename__in=["view_leaderboard", "add_leaderboard"]))
    client.force_login(analyst)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/analysis/leaderboard/", {"sources": ["explicit"], "style_control": "true", "rounds": 60}
        )
    board = Leaderboard.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"?pk={board.pk}")
    assert board.job.status == Job.Status.SUCCEEDED and board.style_control and board.created_by == analyst


def test_admin_add_form_needs_predictions_for_implicit_votes(admin_client, votes_in_db, django_capture_on_commit_callbacks) -> None:  # noqa: E501
    form = {"sources": ["explicit", "implicit"], "style_control": "on", "reward_model": "RF + IF",
            "reward_protocol": "grouped", "soft": "on", "rounds": 60, "seed": 0}
    page = admin_client.post("/admin/analysis/leaderboard/add/", form)
    assert page.status_code == 200 and b"need a reward-model run" in page.content
    run = RewardModelRun.objects.create(name="empty")
    RewardPrediction.objects.create(run=run, turn=votes_in_db[0], model_name="LogReg + IF", protocol="grouped",
                                    prob_1=0.6, predicted=1, p_winner=0.6)
    page = admin_client.post("/admin/analysis/leaderboard/add/", form)
    assert b"no predictions of this model" in page.content
    with django_capture_on_commit_callbacks(execute=True):
        page = admin_client.post("/admin/analysis/leaderboard/add/", {**form, "reward_model": "LogReg + IF"})
    assert page.status_code == 302
    board = Leaderboard.objects.get()
    assert board.job.status == Job.Status.SUCCEEDED, board.job.error
    assert admin_client.get(f"/admin/analysis/leaderboard/{board.pk}/change/").status_code == 200


def test_command_prints_the_table_for_every_source(reward_run) -> None:
    out = StringIO()
    call_command("leaderboard", "--rounds", "100", stdout=out, stderr=StringIO())
    lines = out.getvalue().splitlines()
    assert "Explicit votes" in lines[0] and "gamma-70b" in lines[3] and "alpha-7b" in lines[5]
    out = StringIO()
    call_command("leaderboard", "--source", "implicit", "--style-control", "--rounds", "100", stdout=out,
                 stderr=StringIO())
    text = out.getvalue()
    assert "Implicit votes" in text and "style-ctrl rank" in text and "bullet suffix × lists" in text
    assert "Kendall tau +1.00 [+1.00, +1.00]; 0 of 3 pairs swap order" in text
    out = StringIO()
    call_command("leaderboard", "--source", "mixed", "--format", "csv", "--rounds", "60", stdout=out, stderr=StringIO())
    assert out.getvalue().splitlines()[0] == "source,control,rank,model,score,lower,upper,votes"


def test_command_reads_a_release_folder_and_explains_errors(votes_in_db) -> None:
    out = StringIO()
    call_command("leaderboard", "--release", str(MINI), "--rounds", "60", stdout=out, stderr=StringIO())
    assert "Explicit votes" in out.getvalue()
    with pytest.raises(CommandError, match="reward-model run"):
        call_command("leaderboard", "--source", "implicit", stdout=StringIO(), stderr=StringIO())
    with pytest.raises(CommandError, match="--rounds"):
        call_command("leaderboard", "--rounds", "3", stdout=StringIO(), stderr=StringIO())


def test_command_counts_only_the_votes_of_a_data_selection(votes_in_db) -> None:
    from collection.models import DataSelection

    task_ids = sorted({t.task_id for t in votes_in_db})
    kept = task_ids[:4]
    selection = DataSelection.objects.create(name="four workers", task_ids=kept, n_kept=len(kept),
                                             n_candidates=len(task_ids))
    out = StringIO()
    call_command("leaderboard", "--format", "json", "--rounds", "60", stdout=out, stderr=StringIO())
    everything = json.loads(out.getvalue())["sources"][0]
    out = StringIO()
    call_command("leaderboard", "--selection", str(selection.pk), "--format", "json", "--rounds", "60",
                 stdout=out, stderr=StringIO())
    selected = json.loads(out.getvalue())["sources"][0]
    assert selected["votes"] == sum(1 for t in votes_in_db if t.task_id in kept and t.preferred)
    assert (selected["workers"], everything["workers"]) == (4, 12)
    assert everything["votes"] > selected["votes"]
    with pytest.raises(CommandError, match="--selection: no data selection"):
        call_command("leaderboard", "--selection", "999999", stdout=StringIO(), stderr=StringIO())
    with pytest.raises(CommandError, match="--selection"):
        call_command("leaderboard", "--release", str(MINI), "--selection", str(selection.pk),
                     stdout=StringIO(), stderr=StringIO())
