"""crowd.mturk against a real boto3 client with botocore's Stubber (the service model validates
every parameter we send; moto has no MTurk)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from crowd import mturk

from .conftest import stubbed_client


def _hit(hit_id: str = "3HITAAAAAAAAAAAAAAAAAAAAAAAAAA") -> dict:
    return {"HIT": {"HITId": hit_id, "HITTypeId": "3TYPEBBBBBBBBBBBBBBBBBBBBBBBBB", "HITStatus": "Assignable"}}


def test_masters_ids_differ_by_environment() -> None:
    sandbox = mturk.qualification_requirements(environment="sandbox", masters=True)
    production = mturk.qualification_requirements(environment="production", masters=True)
    assert sandbox[0]["QualificationTypeId"] == "2ARFPLSP75KLA8M8DH1HTEQVJT3SY6"
    assert production[0]["QualificationTypeId"] == "2F1QJWKUDD8XADTFD2Q0G6UTO95ALH"


def test_qualification_requirements_cover_every_setting() -> None:
    reqs = mturk.qualification_requirements(
        environment="production",
        masters=False,
        min_percent_approved=97,
        min_hits_approved=500,
        locales=["us", " gb"],
        retake_qualification_id="3RETAKE",
    )
    by_id = {r["QualificationTypeId"]: r for r in reqs}
    assert by_id["000000000000000000L0"]["IntegerValues"] == [97]
    assert by_id["000000000000000000L0"]["Comparator"] == "GreaterThanOrEqualTo"
    assert by_id["00000000000000000040"]["IntegerValues"] == [500]
    assert by_id["00000000000000000071"]["LocaleValues"] == [{"Country": "US"}, {"Country": "GB"}]
    assert by_id["3RETAKE"]["Comparator"] == "DoesNotExist"
    assert by_id["3RETAKE"]["ActionsGuarded"] == "DiscoverPreviewAndAccept"
    assert "2F1QJWKUDD8XADTFD2Q0G6UTO95ALH" not in by_id


def test_external_question_escapes_the_url_and_needs_https() -> None:
    xml = mturk.external_question("https://lab.example.org/start/?a=1&b=2", 0)
    assert "<ExternalURL>https://lab.example.org/start/?a=1&amp;b=2</ExternalURL>" in xml
    assert "ExternalQuestion.xsd" in xml
    with pytest.raises(ValueError, match="https"):
        mturk.external_question("http://lab.example.org/", 0)


def test_create_hit_sends_a_valid_request_with_token_and_qualifications() -> None:
    client, stub = stubbed_client()
    calls = []
    api = mturk.MTurk(environment="sandbox", client=client, audit=lambda *a: calls.append(a))
    reqs = mturk.qualification_requirements(environment="sandbox", masters=True, min_percent_approved=95)
    stub.add_response(
        "create_hit",
        _hit(),
        {
            "Title": "t",
            "Description": "d",
            "Keywords": "k",
            "Question": mturk.external_question("https://x.org/", 0),
            "Reward": "1.60",
            "MaxAssignments": 9,
            "AssignmentDurationInSeconds": 3600,
            "LifetimeInSeconds": 86400,
            "AutoApprovalDelayInSeconds": 259200,
            "QualificationRequirements": reqs,
            "UniqueRequestToken": "tok-1",
        },
    )
    with stub:
        hit = api.create_hit(
            title="t",
            description="d",
            keywords="k",
            url="https://x.org/",
            frame_height=0,
            reward=Decimal("1.6"),
            max_assignments=9,
            assignment_duration_s=3600,
            lifetime_s=86400,
            auto_approval_delay_s=259200,
            qualification_requirements=reqs,
            unique_request_token="tok-1",
        )
    assert hit["HITId"] == "3HITAAAAAAAAAAAAAAAAAAAAAAAAAA"
    assert calls[0][0] == "create_hit" and calls[0][3] == ""


def test_list_assignments_follows_every_page() -> None:
    client, stub = stubbed_client()
    api = mturk.MTurk(environment="sandbox", client=client)
    base = {"HITId": "H1", "MaxResults": 2, "AssignmentStatuses": ["Submitted", "Approved", "Rejected"]}
    page = lambda ids, token=None: {  # noqa: E731
        "Assignments": [{"AssignmentId": i, "WorkerId": "W" + i, "AssignmentStatus": "Submitted"} for i in ids],
        **({"NextToken": token} if token else {}),
        "NumResults": len(ids),
    }
    stub.add_response("list_assignments_for_hit", page(["A1", "A2"], "t2"), base)
    stub.add_response("list_assignments_for_hit", page(["A3", "A4"], "t3"), {**base, "NextToken": "t2"})
    stub.add_response("list_assignments_for_hit", page(["A5"]), {**base, "NextToken": "t3"})
    with stub:
        ids = [a["AssignmentId"] for a in api.list_assignments("H1", page_size=2)]
    assert ids == ["A1", "A2", "A3", "A4", "A5"]
    stub.assert_no_pending_responses()


def test_reject_needs_feedback_before_any_call() -> None:
    client, stub = stubbed_client()
    api = mturk.MTurk(environment="sandbox", client=client)
    with stub, pytest.raises(ValueError, match="feedback"):
        api.reject("A1", feedback="  ")
    stub.add_response("reject_assignment", {}, {"AssignmentId": "A1", "RequesterFeedback": "no gaze data"})
    with stub:
        api.reject("A1", feedback="no gaze data")
    stub.assert_no_pending_responses()


def test_bonus_carries_amount_and_token() -> None:
    client, stub = stubbed_client()
    api = mturk.MTurk(environment="sandbox", client=client)
    stub.add_response(
        "send_bonus",
        {},
        {"WorkerId": "W1", "AssignmentId": "A1", "BonusAmount": "0.50", "Reason": "thanks", "UniqueRequestToken": "t"},
    )
    with stub:
        api.send_bonus(
            worker_id="W1", assignment_id="A1", amount=Decimal("0.5"), reason="thanks", unique_request_token="t"
        )
    stub.assert_no_pending_responses()  # the call was made, with exactly these parameters


def test_refusal_becomes_mturk_refused_and_is_audited() -> None:
    client, stub = stubbed_client()
    calls = []
    api = mturk.MTurk(environment="sandbox", client=client, audit=lambda *a: calls.append(a))
    stub.add_client_error(
        "approve_assignment", "RequestError", "This operation can be called with a status of: Submitted"
    )
    with stub, pytest.raises(mturk.MTurkRefused, match="status of: Submitted") as err:
        api.approve("A1")
    assert err.value.code == "RequestError" and err.value.operation == "approve_assignment"
    assert calls[0][0] == "approve_assignment" and calls[0][2] is None and "Submitted" in calls[0][3]


def test_invalid_parameters_are_caught_by_the_service_model() -> None:
    client, stub = stubbed_client()
    api = mturk.MTurk(environment="sandbox", client=client)
    stub.add_response("approve_assignment", {})
    with stub, pytest.raises(mturk.MTurkError, match="Invalid parameters") as err:
        api._call("approve_assignment", AssignmentId=12345)  # must be a string
    assert err.value.code == "ParamValidation"


def test_missing_credentials_give_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "MTURK_AWS_ACCESS_KEY_ID",
        "MTURK_AWS_SECRET_ACCESS_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(mturk.MTurkCredentialsMissing, match="MTURK_AWS_ACCESS_KEY_ID"):
        mturk.make_client("sandbox")


def test_credentials_from_mturk_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MTURK_AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("MTURK_AWS_SECRET_ACCESS_KEY", "secret")
    client = mturk.make_client("production")
    assert client.meta.endpoint_url == "https://mturk-requester.us-east-1.amazonaws.com"


def test_parse_answer_reads_the_submitted_fields() -> None:
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?><QuestionFormAnswers xmlns="http://mechanicalturk.amazonaws.com/'
        'AWSMechanicalTurkDataSchemas/2005-10-01/QuestionFormAnswers.xsd"><Answer><QuestionIdentifier>'
        "completion_code</QuestionIdentifier><FreeText>ABC123</FreeText></Answer><Answer><QuestionIdentifier>"
        "task</QuestionIdentifier><FreeText>7</FreeText></Answer></QuestionFormAnswers>"
    )
    assert mturk.parse_answer(xml) == {"completion_code": "ABC123", "task": "7"}
    assert mturk.parse_answer("") == {}


def test_duplicate_token_detection() -> None:
    err = mturk.MTurkRefused(
        "MTurk refused create_hit: RequestError: The HIT with ID 3XYZABCDEFGHIJKLMNOPQRSTUV already exists",
        operation="create_hit",
        code="RequestError",
    )
    assert mturk.already_done(err)
    assert mturk.existing_hit_id(err) == "3XYZABCDEFGHIJKLMNOPQRSTUV"
    assert not mturk.already_done(mturk.MTurkRefused("insufficient funds", code="ServiceFault"))
