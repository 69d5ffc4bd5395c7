"""``manage.py seed_demo_study``: a demo Prolific study with participants at every stage.

``seed_demo`` calls it, so ``make run`` opens on a study whose live monitor, review queue and
admin lists show something: nine participants (entered, consented, calibrating, chatting,
post-task, three completed, one sent out by calibration, one abandoned), the completed tasks'
turns, gaze samples (through the site's ingest service) and QC, synced submissions, one paid
bonus and a data selection over the completed tasks. No Prolific call is made (there is no
token); the study id is a made-up one. Idempotent: a second run changes nothing.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from collection.models import CalibrationAttempt, DataSelection, Platform, Task, Topic, Turn, Worker
from collection.services.trajectory import trajectory_batch_ingest
from crowd import services
from crowd.models import Assignment, Payment, Study
from crowd.qc import THRESHOLD_NAMES

NAME = "Demo Prolific study"
STUDY_ID = "64f0demo0000000000000001"  # Prolific's ids are 24 characters
ANSWER = ("**Photosynthesis** turns light into chemical energy:\n\n1. light is absorbed by chlorophyll;\n"
          "2. water is split and oxygen released;\n3. carbon dioxide is fixed into sugar.\n\n"
          "In short, plants *store sunlight* as sugar.")
#: Seconds of chat of the demo tasks that got that far (long enough for the time-on-task rule).
CHAT_S = 300
#: (participant, stage); the task fields of each stage are set in ``_participant``.
PEOPLE = [
    ("entered", "entered"), ("consented", "consented"), ("calibrating", "calibrating"),
    ("chatting", "chatting"), ("post", "post_task"), ("done1", "completed"), ("done2", "completed"),
    ("done3", "completed"), ("wayout", "way_out"), ("gone", "abandoned"),
]


def _samples(turn: Turn, n: int, t0_ms: int) -> dict[str, pa.Array]:
    """``n`` gaze samples reading along response 1 of ``turn``, 50 ms apart (the upload API's columns)."""
    text = turn.response_1 or "x"
    return {
        "signal": pa.array(["gaze"] * n), "frame": pa.array(["box1"] * n),
        "x": pa.array([float(120 + (i * 7) % 560) for i in range(n)]),
        "y": pa.array([float(215 + 18 * ((i * 7) // 560 % 12)) for i in range(n)]),
        "snippet": pa.array([text[:10]] * n),
        "char_index": pa.array([(i * 3) % len(text) for i in range(n)], type=pa.int32()),
        "page_timer_ms": pa.array([50.0 * i for i in range(n)]),
        "head_in_box": pa.array([1] * n, type=pa.int8()),
        "epoch_ms": pa.array([t0_ms + 50 * i for i in range(n)], type=pa.int64()),
        "turn_id": pa.array([turn.pk] * n, type=pa.int64()),
        "viewport_w": pa.array([1366] * n, type=pa.int32()), "viewport_h": pa.array([768] * n, type=pa.int32()),
        "box_left": pa.array([100.0] * n, type=pa.float32()), "box_top": pa.array([200.0] * n, type=pa.float32()),
        "box_width": pa.array([600.0] * n, type=pa.float32()),
        "box_height": pa.array([300.0] * n, type=pa.float32()),
        "scroll_left": pa.array([0.0] * n, type=pa.float32()), "scroll_top": pa.array([0.0] * n, type=pa.float32()),
        "no_face": pa.array([False] * n),
    }


def _participant(study: Study, n: int, name: str, stage: str, topic: Topic) -> Task | None:
    """One participant who entered for ``study`` and stopped at ``stage`` (their task, if any)."""
    now = timezone.now()
    entered = now - timedelta(minutes=40 - 3 * n)
    pid = f"5f{n:02d}demo{name:0>14}"[:24]
    session = f"65{n:02d}demo{name:0>16}"[:24]
    worker = Worker.objects.create(
        pseudonym=f"demo-{name}", platform=Platform.PROLIFIC, platform_worker_id=pid, created_at=entered,
        consent=None if stage == "entered" else True, consented_at=None if stage == "entered" else entered,
        age=None if stage in ("entered", "consented") else 25 + n, gender="" if stage == "entered" else "female",
        extra={"entries": {session: {"state": "own", "at": entered.isoformat(), "entered": entered.isoformat(),
                                     "study": STUDY_ID}}})
    if stage in ("entered", "consented"):
        return None
    started = entered + timedelta(minutes=3)
    fields: dict[str, Any] = {"status": {"calibrating": "calibrating", "chatting": "chatting",
                                         "post_task": "post_task", "completed": "completed"}.get(stage, "abandoned")}
    chat = started + timedelta(minutes=4)
    if stage not in ("calibrating", "way_out"):
        fields["chat_started_at"] = chat
    if stage in ("post_task", "completed"):
        fields["chat_ended_at"] = chat + timedelta(seconds=CHAT_S)
    if stage == "completed":
        fields.update(finished_at=chat + timedelta(seconds=CHAT_S + 180 + 20 * n),
                      completion_code=f"DEMO-{name.upper()}",
                      summary="Plants store light as sugar; oxygen is what is left of the water.",
                      understand_before=2, understand_after=4, calibration_score=82.0 + n)
    if stage == "way_out":
        fields["calibration_failed_at"] = started + timedelta(minutes=5)
    task = Task.objects.create(
        worker=worker, topic=topic, mode="pairwise" if n % 2 else "pointwise", model_1="demo-a",
        model_2="demo-b" if n % 2 else "", hit_id=STUDY_ID, assignment_id=session, started_at=started, **fields)
    passed = stage != "way_out"
    CalibrationAttempt.objects.create(
        task=task, kind="calibration", score=80.0 if passed else 41.0, threshold=70.0, passed=passed,
        viewport_w=1366, viewport_h=768,
        rule={"failures": [] if passed else ["accuracy@top-left", "spread@top-left"]})
    if stage in ("chatting", "post_task", "completed"):
        for i in range(2 if stage == "completed" else 1):
            turn = Turn.objects.create(
                task=task, index=i, query=("How does photosynthesis work?", "What is left of the water?")[i],
                model_1="demo-a", response_1=ANSWER, likert_1=4 - i,
                model_2=task.model_2, response_2=ANSWER.replace("In short", "So") if task.model_2 else "",
                likert_2=3 if task.model_2 else None, preferred=(1 + i % 2) if task.model_2 else None)
            # Samples cover the chat, half of it per turn at 20 Hz; one completed task has a 60 s
            # hole in its log, so QC flags it (the others pass).
            n_samples = CHAT_S * 10 - (1200 if name == "done3" and i else 0)
            t0 = int(chat.timestamp() * 1000) + i * CHAT_S * 500 + (60_000 if name == "done3" and i else 0)
            trajectory_batch_ingest(task=task, seq=i, columns=_samples(turn, n_samples, t0))
    return task


class Command(BaseCommand):
    help = "Create a demo Prolific study with participants at every stage, QC and a data selection."

    def handle(self, *args: Any, **options: Any) -> None:
        study = Study.objects.filter(name=NAME).first()
        if study is None:
            study = self._create()
        # The same lines on every run (seed_demo's output is compared between runs): what is there.
        done = Task.objects.filter(hit_id=STUDY_ID, status=Task.Status.COMPLETED).count()
        selection = DataSelection.objects.filter(name="Demo selection").order_by("-version").first()
        queue = f", review queue /crowd/review/{selection.pk}/" if selection is not None else ""
        self.stdout.write(self.style.SUCCESS(
            f"{NAME}: {len(PEOPLE)} participants, {done} completed; live monitor /crowd/study/{study.pk}/monitor/"
            f"{queue}"))

    def _create(self) -> Study:
        with transaction.atomic():
            study = Study.objects.create(
                name=NAME, platform=Study.Platform.PROLIFIC, prolific_study_id=STUDY_ID, prolific_status="ACTIVE",
                title="Read answers about a topic (eye tracking with your webcam)",
                description="Chat with an AI about a topic while your webcam estimates where you look.",
                external_url="http://localhost:8000/",
                reward=Decimal("3.50"), max_assignments=20, estimated_minutes=25, code_completed="DEMOC0DE",
                code_screened_out="DEMOSCRN", code_partial="DEMOPART")
            topic, _ = Topic.objects.get_or_create(title="Photosynthesis")
            tasks = [_participant(study, n, name, stage, topic) for n, (name, stage) in enumerate(PEOPLE)]
            done = [t for t in tasks if t is not None and t.status == Task.Status.COMPLETED]
            now = timezone.now()
            for i, task in enumerate(done):
                assignment = Assignment.objects.create(
                    study=study, platform="prolific", assignment_id=task.assignment_id,
                    platform_worker_id=task.worker.platform_worker_id, worker=task.worker, task=task,
                    status="Approved" if i == 0 else "Submitted", completion_code=study.code_completed,
                    platform_status="APPROVED" if i == 0 else "AWAITING REVIEW", submitted_at=task.finished_at,
                    synced_at=now)
                if i == 0:
                    Payment.objects.create(assignment=assignment, key="bonus", amount=Decimal("0.75"),
                                           reason="Careful summary (demo)", unique_request_token="demo-bonus-1",
                                           status="paid", paid_at=now, platform_batch_id="65b0demo0000000000000001")
            for task in done:  # after the assignments: QC finds the study through them
                services.task_qc_compute(task=task)
            services.data_selection_create(
                name="Demo selection", thresholds=dict.fromkeys(THRESHOLD_NAMES), study=study, require_qc=False,
                validation=False, note="Every completed task of the demo study (no thresholds).")
        return study
