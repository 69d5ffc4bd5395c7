"""Money calls that cannot double (issue 22, item 3), against a real local MTurk fake server
(tests/support/fake_mturk_server.py) that many threads can call at once, and PostgreSQL's row locks.

Replays: 5 clicks on "bonus" sent 5 SendBonus calls with one token; AWS refused the duplicates with
'The idempotency token ... has already been processed', which was not recognised, so the row ended
failed; a retry after the token's 24 h paid again. A double click on "Create one HIT" made two HITs.
"""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.urls import reverse

from crowd import mturk, services
from crowd.models import HIT, Assignment, Payment, Study
from tests.crowd.conftest import client_for
from tests.support.fake_mturk_server import fake_mturk

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch):
    with fake_mturk(delay_s=0.3) as fake:
        monkeypatch.setattr(services.platform, "mturk_client", lambda *, environment: fake.client())
        yield fake


def _assignment(study: Study) -> Assignment:
    return Assignment.objects.create(study=study, platform="mturk", assignment_id="3ASSIGNMENT0000000000000000000",
                                     platform_worker_id="A2SWORKER000001", status="Submitted")


def _together(n: int, fn) -> list[object]:
    """Run ``fn`` in ``n`` threads released at once; returns results or exceptions."""
    barrier, out = threading.Barrier(n), [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = fn()
        except Exception as exc:
            out[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return out


def test_duplicate_token_answer_of_aws_is_recognised() -> None:
    err = mturk.MTurkRefused('MTurk refused send_bonus: RequestError: The idempotency token "ifllm-bonus-1" '
                             "has already been processed. (1626172412406)", code="RequestError")
    assert mturk.already_done(err)
    assert not mturk.already_done(mturk.MTurkRefused("MTurk refused send_bonus: RequestError: Insufficient funds",
                                                      code="RequestError"))


def test_five_concurrent_bonus_clicks_make_one_call_and_end_paid(study: Study, researcher, server) -> None:
    a = _assignment(study)
    results = _together(5, lambda: services.bonus_pay(assignment=a, user=researcher, amount=Decimal("0.75"),
                                                      reason="careful reading"))
    assert all(isinstance(r, Payment) for r in results), results
    assert server.count("SendBonus") == 1 and len(server.bonuses) == 1
    assert Payment.objects.get().status == Payment.Status.PAID


def test_duplicate_answer_ends_paid_not_failed(study: Study, researcher, server) -> None:
    """The row was left pending by a call whose answer was lost; MTurk had paid it. The retry
    finds it in ListBonusPayments and makes no second SendBonus."""
    a = _assignment(study)
    payment = Payment.objects.create(assignment=a, amount=Decimal("0.75"), reason="careful reading",
                                     unique_request_token="ifllm-bonus-lost")
    server.handle("SendBonus", {"WorkerId": a.platform_worker_id, "AssignmentId": a.assignment_id,
                                "BonusAmount": "0.75", "Reason": "careful reading",
                                "UniqueRequestToken": payment.unique_request_token})
    server.calls.clear()
    paid = services.bonus_pay(assignment=a, user=researcher, amount=Decimal("0.75"), reason="careful reading")
    assert paid.status == Payment.Status.PAID
    assert [op for op, _ in server.calls] == ["ListBonusPayments"]


def test_retry_after_the_token_expired_does_not_pay_twice(study: Study, researcher, server) -> None:
    """A failed row from before (the old bug), and AWS has forgotten the token (24 h later)."""
    a = _assignment(study)
    services.bonus_pay(assignment=a, user=researcher, amount=Decimal("0.75"), reason="careful reading")
    Payment.objects.update(status=Payment.Status.FAILED, error="old: duplicate answer not recognised")
    server.forget_tokens()
    paid = services.bonus_pay(assignment=a, user=researcher, amount=Decimal("0.75"), reason="careful reading")
    assert paid.status == Payment.Status.PAID
    assert len(server.bonuses) == 1 and server.count("SendBonus") == 1


def test_failed_bonus_that_mturk_did_not_pay_is_retried(study: Study, researcher, server) -> None:
    """The must-pay case: nothing listed, so the retry sends (with the same token)."""
    a = _assignment(study)
    Payment.objects.create(assignment=a, amount=Decimal("0.75"), reason="careful reading",
                           unique_request_token="ifllm-bonus-unpaid", status=Payment.Status.FAILED)
    services.bonus_pay(assignment=a, user=researcher, amount=Decimal("0.75"), reason="careful reading")
    assert len(server.bonuses) == 1 and server.calls[-1][1]["UniqueRequestToken"] == "ifllm-bonus-unpaid"


def test_double_click_on_create_one_hit_makes_one_hit(study: Study, researcher, server) -> None:
    client = client_for(researcher)
    page = client.get(reverse("admin:crowd_study_changelist"))
    key = page.context["request_key"]
    assert f'name="_once" value="{key}"' in page.content.decode()
    data = {"action": "create_hits", "_selected_action": [study.pk], "_once": key}
    url = reverse("admin:crowd_study_changelist")

    def click() -> int:
        return client_for(researcher).post(url, data).status_code

    assert _together(2, click) == [302, 302]
    assert server.count("CreateHIT") == 1 and HIT.objects.count() == 1
    # a new page (a new key) is a deliberate second HIT
    key2 = client.get(url).context["request_key"]
    client.post(url, {**data, "_once": key2})
    assert server.count("CreateHIT") == 2 and HIT.objects.filter(hit_id__isnull=False).count() == 2
