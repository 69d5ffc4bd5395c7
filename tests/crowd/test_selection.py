"""Data selections: the pure rules (keep / leave out, and why), the frozen model, the admin and
QC pages that create them, and the export made from one (left out what the selection leaves out,
and the card and manifest say so per rule)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from collection.models import DataSelection, Task, Turn
from crowd import anonymise, services
from crowd import selection as sel
from crowd.models import TaskQC
from crowd.qc import DEFAULT_THRESHOLDS, PAPER_THRESHOLDS

from .conftest import client_for

GOOD = {"validation_passed": None, "calibration_score": None, "response_score": 0.9, "max_index_score": 0.6,
        "sampling_rate_hz": 9.0, "head_in_box_share": None, "time_on_task_s": None, "max_log_gap_s": 3.0,
        "summary_words": 20}


def _frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([{"has_qc": True, **GOOD, **r} for r in rows])


# --------------------------------------------------------------------------- pure rules
def test_rules_keep_a_passing_task_and_leave_out_each_failing_one_with_its_reason() -> None:
    tasks = _frame([
        {"task": 1},                                   # passes
        {"task": 2, "response_score": 0.61},           # fails the paper's response score
        {"task": 3, "has_qc": False},                  # never measured
        {"task": 4},                                   # good figures, excluded by staff
        {"task": 5, "max_index_score": 0.1},           # fails, but staff kept it
        {"task": 6, "response_score": None, "max_index_score": 0.05},  # not measured + fails max-index
    ])
    rules = sel.make_rules(thresholds=PAPER_THRESHOLDS, manual_exclusions=[4], kept_overrides=[5, 4])
    assert rules["kept_overrides"] == [5]  # a staff exclusion beats a keep of the same task
    result = sel.evaluate(tasks, rules).set_index("task")
    assert result.loc[1, "kept"] and not result.loc[1, "reasons"]
    assert not result.loc[2, "kept"] and result.loc[2, "reasons"] == ["response_score"]
    assert "0.61 < 0.75" in result.loc[2, "messages"][0]
    assert not result.loc[3, "kept"] and result.loc[3, "reasons"] == ["no_qc"]
    assert not result.loc[4, "kept"] and result.loc[4, "reasons"] == ["excluded_by_staff"]
    assert result.loc[5, "kept"] and result.loc[5, "kept_by_staff"] and result.loc[5, "reasons"] == ["max_index_score"]
    assert not result.loc[6, "kept"] and result.loc[6, "reasons"] == ["response_score", "max_index_score"]
    summary = sel.summarise(result.reset_index())
    assert (summary["candidates"], summary["kept"], summary["left_out"], summary["kept_by_staff"]) == (6, 2, 4, 1)
    assert summary["by_reason"]["response_score"] == {"label": sel.REASON_LABELS["response_score"], "tasks": 2,
                                                      "only": 1}
    assert (summary["by_reason"]["max_index_score"]["tasks"], summary["by_reason"]["max_index_score"]["only"]) == (1, 0)
    assert list(summary["by_reason"]) == ["excluded_by_staff", "no_qc", "response_score", "max_index_score"]


def test_switches_decide_what_is_a_reason() -> None:
    tasks = _frame([{"task": 1, "has_qc": False}, {"task": 2, "validation_passed": False},
                    {"task": 3, "summary_words": 2}])
    strict = sel.evaluate(tasks, sel.make_rules()).set_index("task")  # QC defaults, validation on
    assert not strict["kept"].any()
    assert strict.loc[2, "reasons"] == ["validation"] and strict.loc[3, "reasons"] == ["summary_words"]
    loose = sel.evaluate(tasks, sel.make_rules(thresholds={**DEFAULT_THRESHOLDS, "min_summary_words": None},
                                               require_qc=False, validation=False))
    assert loose["kept"].all() and not loose["kept_by_staff"].any()


def test_paper_filter_is_a_set_of_rules_and_is_named() -> None:
    assert sel.is_paper_filter(sel.PAPER_FILTER_RULES) and not sel.is_paper_filter(sel.make_rules())
    text = sel.describe_rules(sel.PAPER_FILTER_RULES)
    assert any("response score" in line and ">= 0.75" in line for line in text)
    assert text[-1] == "These thresholds are the paper's filter (section 3.4)."
    assert not any("validation" in line for line in text)


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"thresholds": {"min_respons_score": 0.7}}, "thresholds"),
    ({"thresholds": {"min_response_score": -1}}, "min_response_score"),
    ({"thresholds": {"max_log_gap_s": float("inf")}}, "max_log_gap_s"),
    ({"scope": "everything"}, "scope"),
])
def test_bad_rules_are_refused_naming_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        sel.make_rules(**kwargs)


# --------------------------------------------------------------------------- database
@pytest.fixture
def qc_rows(mini_release: None) -> dict[int, TaskQC]:
    for task in Task.objects.filter(chunks__isnull=False).distinct().order_by("pk"):
        services.task_qc_compute(task=task)
    # keep a task that fails the strict response threshold used below, exclude another
    rows = {q.task_id: q for q in TaskQC.objects.order_by("task_id")}
    failing = next(pk for pk, q in rows.items() if q.response_score is not None and q.response_score < 0.95)
    services.task_keep(task=Task.objects.get(pk=failing))
    excluded = Task.objects.get(release_task_id=200, worker__pseudonym="worker_0ddfe023")
    services.task_exclude(task=excluded)
    return {q.task_id: q for q in TaskQC.objects.select_related("task")}


STRICT = {**PAPER_THRESHOLDS, "min_response_score": 0.95}


def test_selection_freezes_what_the_rules_keep_on_the_mini_release(qc_rows: dict[int, TaskQC], researcher) -> None:
    selection = services.data_selection_create(name="paper strict", thresholds=STRICT, user=researcher)
    candidates = Task.objects.filter(turns__isnull=False).distinct()
    expected_kept, expected_reasons = set(), {}
    for task in candidates:
        q = qc_rows.get(task.pk)
        if task.excluded:
            expected_reasons[task.pk] = ["excluded_by_staff"]
        elif q is not None and q.decision == TaskQC.Decision.KEEP:
            expected_kept.add(task.pk)
        elif q is None:
            expected_reasons[task.pk] = ["no_qc"]
        else:
            codes = [c for c, ok in (("response_score", q.response_score is not None and q.response_score >= 0.95),
                                     ("max_index_score", q.max_index_score is not None and q.max_index_score >= 0.3))
                     if not ok]
            if codes:
                expected_reasons[task.pk] = codes
            else:
                expected_kept.add(task.pk)
    assert set(selection.task_ids) == expected_kept and expected_kept and expected_reasons
    assert {r["task"]: r["reasons"] for r in selection.left_out} == expected_reasons
    assert selection.n_kept + selection.n_left_out == selection.n_candidates == candidates.count()
    assert selection.rules["thresholds"]["min_response_score"] == 0.95
    assert selection.created_by == researcher and selection.version == 1
    assert len(selection.summary["kept_despite"]) == 1
    # frozen: a later staff decision does not move it, and saving it again is refused
    services.task_exclude(task=Task.objects.get(pk=next(iter(expected_kept))))
    selection.refresh_from_db()
    assert set(selection.task_ids) == expected_kept
    with pytest.raises(ValueError, match="frozen"):
        selection.save()
    again = services.data_selection_create(name="paper strict", thresholds=STRICT)
    assert again.version == 2 and again.n_kept == selection.n_kept - 1


def test_export_from_a_selection_leaves_out_what_it_excludes_and_says_why(
    qc_rows: dict[int, TaskQC], tmp_path: Path
) -> None:
    selection = services.data_selection_create(name="paper strict", thresholds=STRICT)
    counts = services.dataset_export(path=tmp_path, selection=selection)
    key = settings.IFLLM_PSEUDONYM_KEY
    kept = Task.objects.filter(pk__in=selection.task_ids).select_related("worker")
    keys = {(anonymise.keyed_pseudonym(key, t.worker.pseudonym), t.public_id) for t in kept}
    tasks = pd.read_parquet(tmp_path / "parquet" / "tasks.parquet")
    assert set(zip(tasks["worker"], tasks["task_id"], strict=True)) == keys and counts["tasks"] == len(keys)
    turns = pd.read_parquet(tmp_path / "parquet" / "turns.parquet")
    assert set(zip(turns["worker"], turns["task_id"], strict=True)) <= keys
    assert len(turns) == Turn.objects.filter(task__in=kept).count()
    # every QC figure and flag per task
    for column in ("qc_computed", "qc_response_score", "qc_max_index_score", "qc_calibration_score",
                   "qc_sampling_rate_hz", "qc_head_in_box_share", "qc_time_on_task_s", "qc_max_log_gap_s",
                   "qc_total_gap_s", "qc_n_gaps", "qc_summary_words", "qc_n_gaze_samples", "qc_tail_gap_s",
                   "qc_flagged", "qc_flags", "qc_reasons", "qc_thresholds", "qc_decision", "selection_kept_by_staff"):
        assert column in tasks.columns, column
    by_key = {(t.worker.pseudonym, t.public_id): t.pk for t in kept}
    for row in tasks.itertuples(index=False):
        pk = next(pk for (w, tid), pk in by_key.items()
                  if anonymise.keyed_pseudonym(key, w) == row.worker and tid == row.task_id)
        q = qc_rows.get(pk)
        if q is not None:
            assert row.qc_response_score == pytest.approx(q.response_score)
            assert bool(row.qc_flagged) == q.flagged and row.qc_flags == ",".join(q.flag_codes())
    assert tasks["selection_kept_by_staff"].sum() == 1
    # the manifest: the selection, its rules and per reason what was left out (pseudonymised)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["qc_applied"] is True and manifest["selection"]["id"] == selection.pk
    assert manifest["selection"]["rules"] == selection.rules
    assert manifest["left_out"]["total"] == selection.n_left_out == manifest["excluded_tasks_left_out"]
    per_reason = {code: e["tasks"] for code, e in manifest["left_out"]["by_reason"].items()}
    assert per_reason == {code: e["tasks"] for code, e in selection.summary["by_reason"].items()}
    assert per_reason["excluded_by_staff"] == 1 and per_reason["response_score"] >= 1
    assert all(t["worker"].startswith("w_") for t in manifest["left_out"]["tasks"])
    assert "worker_0ddfe023" not in (tmp_path / "manifest.json").read_text()
    # the card states exactly what was left out and why
    card = (tmp_path / "hf" / "README.md").read_text()
    assert f"Data selection **paper strict v1** (id {selection.pk})" in card
    assert f"{selection.n_kept} of {selection.n_candidates}" in card
    assert "response score (gaze on answer text) >= 0.95" in card
    for entry in selection.summary["by_reason"].values():
        assert f"- {entry['label']}: {entry['tasks']} task(s)" in card
    assert "passed quality\ncontrol" not in card and "QC not applied" not in card


def test_export_without_a_selection_says_qc_was_not_applied(qc_rows: dict[int, TaskQC], tmp_path: Path) -> None:
    services.dataset_export(path=tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    flagged = TaskQC.objects.filter(flagged=True, task__excluded=False).count()
    assert manifest["qc_applied"] is False and manifest["selection"] is None
    assert manifest["included_flagged_by_qc"] == flagged > 0
    assert manifest["left_out"]["by_reason"] == {"excluded_by_staff": {"label": "excluded by staff", "tasks": 1}}
    card = (tmp_path / "hf" / "README.md").read_text()
    assert "quality control was **not** applied" in card and f"{flagged} of them are flagged by QC" in card
    tasks = pd.read_parquet(tmp_path / "parquet" / "tasks.parquet")
    assert int(tasks["qc_flagged"].fillna(False).sum()) == flagged


# --------------------------------------------------------------------------- pages
def test_qc_pages_link_to_the_form_with_their_thresholds_and_the_form_creates_a_version(
    qc_rows: dict[int, TaskQC], researcher, viewer
) -> None:
    client = client_for(researcher)
    page = client.get(reverse("crowd:qc_plots"), {"source": "release", "min_response_score": "0.95"}).content.decode()
    assert 'id="create-selection"' in page
    link = page.split('id="create-selection" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    assert "min_response_score=0.95" in link and "scope=release" in link
    form = client.get(link).content.decode()
    assert 'name="min_response_score" value="0.95"' in form
    data = {"name": "from the page", "note": "", "scope": "release", "study": "", "require_qc": "on",
            **{name: ("" if v is None else v) for name, v in STRICT.items()}}
    response = client.post(reverse("admin:collection_dataselection_add"), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    made = DataSelection.objects.get(name="from the page")
    assert made.rules["scope"] == "release" and made.rules["validation"] is False
    detail = client.get(reverse("admin:collection_dataselection_change", args=[made.pk])).content.decode()
    assert "Tasks left out" in detail and "excluded by staff" in detail and 'name="_save"' not in detail
    assert client.get(reverse("crowd:release_exclusions")).content.decode().count('id="create-selection"') == 1
    # viewers see selections but create none, and the QC pages offer them no button
    viewer_client = client_for(viewer)
    assert viewer_client.get(reverse("admin:collection_dataselection_change", args=[made.pk])).status_code == 200
    assert viewer_client.post(reverse("admin:collection_dataselection_add"), data).status_code == 403
    assert 'id="create-selection"' not in viewer_client.get(reverse("crowd:qc_plots")).content.decode()
    with pytest.raises(PermissionDenied, match="lacks"):
        services.data_selection_create(name="x", user=viewer)


def test_selection_form_names_bad_fields(researcher, mini_release: None) -> None:
    response = client_for(researcher).post(reverse("admin:collection_dataselection_add"),
                                           {"name": "", "scope": "all", "min_response_score": "-1"})
    page = response.content.decode()
    assert response.status_code == 200 and "errorlist" in page
    assert not DataSelection.objects.exists()


def test_admin_actions_export_a_selection_and_make_a_new_version(
    qc_rows: dict[int, TaskQC], researcher, django_capture_on_commit_callbacks, settings, tmp_path
) -> None:
    from jobs.models import Job

    settings.VAR_DIR = tmp_path
    made = services.data_selection_create(name="v", thresholds=STRICT)
    client = client_for(researcher)
    url = reverse("admin:collection_dataselection_changelist")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"action": "export_selection", "_selected_action": [made.pk]})
    job = Job.objects.get(kind="crowd.export_dataset")
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.params["selection_pk"] == made.pk
    manifest = json.loads(next(tmp_path.rglob("manifest.json")).read_text())
    assert manifest["selection"]["id"] == made.pk
    client.post(url, {"action": "new_version", "_selected_action": [made.pk]})
    assert DataSelection.objects.filter(name="v").count() == 2
    response = client.post(reverse("admin:crowd_taskqc_changelist"),
                           {"action": "create_selection", "_selected_action": [next(iter(qc_rows.values())).pk]})
    assert response.status_code == 302 and response["Location"] == reverse("admin:collection_dataselection_add")


def test_a_selection_over_no_task_is_refused_naming_the_field(researcher, study) -> None:
    """A study with no tasks yet (or a scope with none): the form says so on the field, the
    service raises a ValueError naming it (it was a KeyError deep in pandas: a 500)."""
    client = client_for(researcher)
    data = {"name": "empty", "note": "", "scope": "all", "study": study.pk, "require_qc": "on"}
    response = client.post(reverse("admin:collection_dataselection_add"), data)
    page = response.content.decode()
    assert response.status_code == 200 and f"no task of {study.name} has turns and QC" in page
    assert not DataSelection.objects.exists()
    with pytest.raises(ValueError, match="^study: no task of"):
        services.data_selection_create(name="empty", study=study, user=researcher)
    with pytest.raises(ValueError, match="^scope: no task in scope 'release'"):
        services.data_selection_create(name="empty", scope="release", user=researcher)


def test_a_new_version_over_no_task_is_an_error_message_not_a_500(researcher, study) -> None:
    """"New version" of a selection whose study has no task left (all withdrawn, say)."""
    old = DataSelection.objects.create(name="emptied", rules={"study": study.pk, "scope": "all"}, task_ids=[1])
    client = client_for(researcher)
    response = client.post(reverse("admin:collection_dataselection_changelist"),
                           {"action": "new_version", "_selected_action": [old.pk]}, follow=True)
    assert response.status_code == 200
    assert f"no task of {study.name} has turns and QC" in response.content.decode()
    assert DataSelection.objects.filter(name="emptied").count() == 1
