"""The Prolific client against the local fake API (a real HTTP server on loopback): every call
goes over a socket and is parsed as Prolific's answers would be; failures are scripted on the
server (errors, 429 with Retry-After, 5xx, a slow answer, an answer lost after the work)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from crowd import prolific_api
from crowd.prolific_api import ProlificClient, ProlificError, ProlificRateLimited, ProlificTimeout
from tests.support.fake_prolific import FakeProlific

CODES = {"completed": "C0MPL3T", "screened_out": "SCR33N", "partial": "PART1AL"}


@pytest.fixture
def fake():
    with FakeProlific(token="tok") as server:
        yield server


@pytest.fixture
def audit():
    return []


@pytest.fixture
def client(fake, audit):
    waits: list[float] = []
    c = ProlificClient("tok", fake.url, timeout=1.0, audit=lambda *a: audit.append(a), sleep=waits.append)
    c.waits = waits
    yield c
    c.close()


def _payload(**kw):
    base = dict(name="Chat with AI", internal_name="ifllm-study-1: pilot", description="Needs a webcam.",
                external_url="https://lab.example.org/start/", places=9, reward=Decimal("2.50"), estimated_minutes=30,
                devices=["desktop"], webcam=True, codes=CODES)
    return prolific_api.study_payload(**{**base, **kw})


def test_study_payload_has_the_placeholders_codes_and_requirements():
    p = _payload()
    assert p["external_study_url"] == ("https://lab.example.org/start/?PROLIFIC_PID={{%PROLIFIC_PID%}}"
                                       "&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}")
    assert p["prolific_id_option"] == "url_parameters" and p["reward"] == 250
    assert [(c["code"], c["code_type"]) for c in p["completion_codes"]] == [
        ("C0MPL3T", "COMPLETED"), ("SCR33N", "SCREENED_OUT"), ("PART1AL", "OTHER")]
    assert p["peripheral_requirements"] == ["camera"] and p["device_compatibility"] == ["desktop"]
    assert _payload(webcam=False)["peripheral_requirements"] == []
    with pytest.raises(ValueError, match="completion code"):
        _payload(codes={"partial": "X"})
    with pytest.raises(ValueError, match="devices"):
        _payload(devices=["phone"])


def test_create_publish_pause(client, fake, audit):
    study = client.study_create(_payload())
    assert study["status"] == "UNPUBLISHED" and fake.studies[study["id"]]["reward"] == 250
    assert client.study_transition(study["id"], "PUBLISH")["status"] == "ACTIVE"
    assert client.study_transition(study["id"], "PAUSE")["status"] == "PAUSED"
    with pytest.raises(ProlificError) as err:  # Prolific refuses pausing a paused study
        client.study_transition(study["id"], "PAUSE")
    assert err.value.status == 400 and "PAUSED" in str(err.value) and not err.value.outcome_unknown
    assert [a[0] for a in audit] == ["study_create", "study_publish", "study_pause", "study_pause"]
    assert [bool(a[3]) for a in audit] == [False, False, False, True]
    assert all("tok" not in repr(a[1]) for a in audit)  # the token is never audited


def test_create_refused_names_the_missing_field(client, fake):
    payload = _payload()
    payload["description"] = ""
    with pytest.raises(ProlificError) as err:
        client.study_create(payload)
    assert err.value.status == 400 and "description" in str(err.value)
    assert not fake.studies


def test_wrong_token_is_401(fake):
    with ProlificClient("other", fake.url, max_retries=0) as c, pytest.raises(ProlificError) as err:
        c.studies()
    assert err.value.status == 401


def test_token_required():
    with pytest.raises(prolific_api.ProlificTokenMissing, match="PROLIFIC_API_TOKEN"):
        ProlificClient("", "http://127.0.0.1:9")


def test_submissions_follow_every_page(client, fake):
    sid = client.study_create(_payload())["id"]
    made = [fake.add_submission(sid, f"P{i}")["id"] for i in range(5)]  # page_size 2: three pages
    assert [s["id"] for s in client.submissions(sid)] == made
    assert fake.count("GET", r"/submissions/$") == 3


def test_bulk_approve_reject_and_return(client, fake):
    sid = client.study_create(_payload())["id"]
    a, b, c = (fake.add_submission(sid, p)["id"] for p in ("PA", "PB", "PC"))
    client.submissions_approve([a, b])
    assert fake.submissions[a]["status"] == fake.submissions[b]["status"] == "APPROVED"
    with pytest.raises(ValueError, match="message"):  # checked before any call
        client.submission_reject(c, message="too short", category="LOW_EFFORT")
    with pytest.raises(ValueError, match="rejection_category"):
        client.submission_reject(c, message="x" * 120, category="")
    assert fake.count("POST", "/transition/") == 0
    client.submission_reject(c, message="You did not look at the answers: " + "x" * 80, category="LOW_EFFORT")
    assert fake.submissions[c]["status"] == "REJECTED"
    with pytest.raises(ValueError, match="reason"):
        client.submission_request_return(a, reasons=[" "])
    client.submission_request_return(a, reasons=["No gaze data reached the site"])
    assert fake.submissions[a]["return_requested"]


def test_server_side_rejection_rules_are_reported(client, fake):
    """The fake enforces Prolific's rules too: a message the client would not send is refused."""
    sid = client.study_create(_payload())["id"]
    sub = fake.add_submission(sid, "PX")["id"]
    with pytest.raises(ProlificError) as err:
        client._request("submission_reject", "POST", f"/api/v1/submissions/{sub}/transition/",
                        body={"action": "REJECT", "message": "no"})
    assert err.value.status == 400 and "message" in str(err.value) and "rejection_category" in str(err.value)


def test_bonus_create_then_pay(client, fake):
    sid = client.study_create(_payload())["id"]
    fake.add_submission(sid, "PBONUS")
    bulk = client.bonus_create(sid, [("PBONUS", Decimal("1.50"))])
    assert fake.paid_to("PBONUS") == 0  # set up, not paid
    assert bulk["total_amount"] > 150
    client.bonus_pay(bulk["id"])
    assert fake.paid_to("PBONUS") == Decimal("1.50")
    with pytest.raises(ProlificError) as err:  # not in the study: 400 naming the id
        client.bonus_create(sid, [("STRANGER", Decimal("1"))])
    assert err.value.status == 400 and "STRANGER" in str(err.value)


def test_429_is_retried_after_retry_after(client, fake):
    fake.fail("POST", "/studies/$", status=429, retry_after=0.2, times=2)
    study = client.study_create(_payload())
    assert study["id"] in fake.studies and len(fake.studies) == 1
    assert client.waits == [0.2, 0.2]


def test_429_gives_up_after_the_bounded_retries(client, fake):
    fake.fail("POST", "/studies/$", status=429, retry_after=0.1, times=3)
    with pytest.raises(ProlificRateLimited) as err:
        client.study_create(_payload())
    assert err.value.retry_after == 0.1 and not fake.studies and len(client.waits) == 2


def test_429_with_a_long_retry_after_is_not_waited_for(client, fake):
    fake.fail("GET", "/studies/$", status=429, retry_after=3600)
    with pytest.raises(ProlificRateLimited):
        client.studies()
    assert client.waits == []


def test_5xx_get_is_retried_post_is_not(client, fake):
    fake.fail("GET", "/studies/$", status=503)
    assert client.studies() == []
    assert client.waits == [1.0]
    fake.fail("POST", "/studies/$", status=502)
    with pytest.raises(ProlificError) as err:
        client.study_create(_payload())
    assert err.value.status == 502 and err.value.outcome_unknown
    assert fake.count("POST", "/studies/$") == 1  # never sent twice


def test_slow_answer_times_out(fake, audit):
    with ProlificClient("tok", fake.url, timeout=0.3, audit=lambda *a: audit.append(a), max_retries=0) as c:
        fake.fail("POST", "/studies/$", delay=1.0)
        with pytest.raises(ProlificTimeout) as err:
            c.study_create(_payload())
    assert err.value.outcome_unknown and audit[-1][3]
    assert len(fake.studies) == 1  # the slow server did the work: the outcome really was unknown


def test_lost_pay_answer_is_not_resent_by_the_client(client, fake):
    sid = client.study_create(_payload())["id"]
    fake.add_submission(sid, "PLOST")
    bulk = client.bonus_create(sid, [("PLOST", Decimal("2.00"))])
    fake.fail("POST", "/pay/$", lost=True)
    with pytest.raises(ProlificTimeout) as err:
        client.bonus_pay(bulk["id"])
    assert err.value.outcome_unknown
    assert fake.count("POST", "/pay/$") == 1 and fake.paid_to("PLOST") == Decimal("2.00")


def test_fake_pay_is_not_idempotent_as_documented(client, fake):
    """Why the services never send pay twice: the second call pays again."""
    sid = client.study_create(_payload())["id"]
    fake.add_submission(sid, "PTWICE")
    bulk = client.bonus_create(sid, [("PTWICE", Decimal("1.00"))])
    client.bonus_pay(bulk["id"])
    client.bonus_pay(bulk["id"])
    assert fake.paid_to("PTWICE") == Decimal("2.00")


def test_submission_get_404_is_none(client, fake):
    assert client.submission_get("NOPE") is None


def test_bonus_csv_rules():
    assert prolific_api.bonus_csv([("P1", "4.25"), ("P2", Decimal("1"))]) == "P1,4.25\nP2,1.00\n"
    with pytest.raises(ValueError):
        prolific_api.bonus_csv([("P1", "0")])
    with pytest.raises(ValueError):
        prolific_api.bonus_csv([("P1,P2", "1")])
