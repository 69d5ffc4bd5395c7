"""The one boto3 wrapper for Amazon Mechanical Turk: nothing else in the project calls MTurk.

Every call goes through :meth:`MTurk._call`, which hands the operation, its parameters and the
answer (or the error) to an ``audit`` callback, so the services can log each call whatever
happens. Errors come out as :class:`MTurkError` subclasses with the platform's message, never as
raw botocore exceptions.

Credentials come from the environment (``MTURK_AWS_ACCESS_KEY_ID`` / ``MTURK_AWS_SECRET_ACCESS_KEY``,
else the usual ``AWS_*`` chain). MTurk only lives in us-east-1.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any
from xml.etree import ElementTree
from xml.sax.saxutils import escape

import boto3
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

REGION = "us-east-1"
ENDPOINTS = {
    "sandbox": "https://mturk-requester-sandbox.us-east-1.amazonaws.com",
    "production": "https://mturk-requester.us-east-1.amazonaws.com",
}
#: The Masters qualification has a different id in each environment.
MASTERS_QUALIFICATION = {
    "sandbox": "2ARFPLSP75KLA8M8DH1HTEQVJT3SY6",
    "production": "2F1QJWKUDD8XADTFD2Q0G6UTO95ALH",
}
PERCENT_ASSIGNMENTS_APPROVED = "000000000000000000L0"
NUMBER_HITS_APPROVED = "00000000000000000040"
LOCALE = "00000000000000000071"
EXTERNAL_QUESTION_NS = (
    "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2006-07-14/ExternalQuestion.xsd"
)
ALL_ASSIGNMENT_STATUSES = ["Submitted", "Approved", "Rejected"]

AuditCallback = Callable[[str, dict[str, Any], dict[str, Any] | None, str], None]


class MTurkError(Exception):
    """A call to MTurk failed; ``operation`` and ``code`` say which and why."""

    def __init__(self, message: str, *, operation: str = "", code: str = "") -> None:
        super().__init__(message)
        self.operation, self.code = operation, code


class MTurkCredentialsMissing(MTurkError):
    """No AWS credentials were found in the environment."""


class MTurkRefused(MTurkError):
    """MTurk answered with an error (bad request, insufficient funds, unknown assignment...)."""


def already_done(error: MTurkError) -> bool:
    """Whether MTurk refused a call because the same ``UniqueRequestToken`` already succeeded.

    AWS words it differently per operation: CreateHIT "The HIT with ID ... already exists",
    SendBonus and others 'The idempotency token "..." has already been processed.'
    """
    text = str(error).lower()
    return (
        "uniquerequesttoken" in text
        or "already exists" in text
        or "idempotency token" in text
        or "already been processed" in text
        or "alreadyexists" in error.code.lower()
    )


def existing_hit_id(error: MTurkError) -> str | None:
    """The HIT id in the message of a refused duplicate CreateHIT, if it names one."""
    match = re.search(r"HIT(?:Id| with ID| id)?[:= ]+\s*([A-Z0-9]{20,})", str(error))
    return match.group(1) if match else None


# --------------------------------------------------------------------------- request parts
def external_question(url: str, frame_height: int = 0) -> str:
    """ExternalQuestion XML for ``url`` (which must be HTTPS; MTurk adds its own parameters)."""
    if not url.startswith("https://"):
        raise ValueError("MTurk ExternalQuestion URLs must use https://")
    return (
        f'<ExternalQuestion xmlns="{EXTERNAL_QUESTION_NS}">'
        f"<ExternalURL>{escape(url)}</ExternalURL><FrameHeight>{int(frame_height)}</FrameHeight>"
        "</ExternalQuestion>"
    )


def qualification_requirements(
    *,
    environment: str,
    masters: bool,
    min_percent_approved: int | None = None,
    min_hits_approved: int | None = None,
    locales: list[str] | None = None,
    retake_qualification_id: str | None = None,
) -> list[dict[str, Any]]:
    """QualificationRequirements of a HIT. The retake qualification must NOT exist on a worker
    (it is granted on completion), and it hides the HIT from them entirely."""
    reqs: list[dict[str, Any]] = []
    if masters:
        reqs.append(
            {
                "QualificationTypeId": MASTERS_QUALIFICATION[environment],
                "Comparator": "Exists",
                "ActionsGuarded": "Accept",
            }
        )
    if min_percent_approved is not None:
        reqs.append(
            {
                "QualificationTypeId": PERCENT_ASSIGNMENTS_APPROVED,
                "Comparator": "GreaterThanOrEqualTo",
                "IntegerValues": [int(min_percent_approved)],
                "ActionsGuarded": "Accept",
            }
        )
    if min_hits_approved is not None:
        reqs.append(
            {
                "QualificationTypeId": NUMBER_HITS_APPROVED,
                "Comparator": "GreaterThanOrEqualTo",
                "IntegerValues": [int(min_hits_approved)],
                "ActionsGuarded": "Accept",
            }
        )
    if locales:
        reqs.append(
            {
                "QualificationTypeId": LOCALE,
                "Comparator": "In",
                "LocaleValues": [{"Country": c.strip().upper()} for c in locales if c.strip()],
                "ActionsGuarded": "Accept",
            }
        )
    if retake_qualification_id:
        reqs.append(
            {
                "QualificationTypeId": retake_qualification_id,
                "Comparator": "DoesNotExist",
                "ActionsGuarded": "DiscoverPreviewAndAccept",
            }
        )
    return reqs


def money(amount: Decimal | float | str) -> str:
    """MTurk's amount format: dollars with two decimals, no currency sign."""
    return f"{Decimal(str(amount)).quantize(Decimal('0.01'))}"


def parse_answer(xml: str | None) -> dict[str, str]:
    """The fields of an assignment's QuestionFormAnswers XML (what the site posted back)."""
    if not xml:
        return {}
    out: dict[str, str] = {}
    root = ElementTree.fromstring(xml)
    for answer in root.iter():
        if answer.tag.rsplit("}", 1)[-1] != "Answer":
            continue
        name = value = ""
        for child in answer:
            tag = child.tag.rsplit("}", 1)[-1]
            if tag == "QuestionIdentifier":
                name = child.text or ""
            elif tag == "FreeText":
                value = child.text or ""
        if name:
            out[name] = value
    return out


def make_client(environment: str) -> Any:
    """A boto3 MTurk client for ``environment``; raises :class:`MTurkCredentialsMissing`."""
    if environment not in ENDPOINTS:
        raise ValueError(f"environment must be one of {sorted(ENDPOINTS)}")
    key = os.environ.get("MTURK_AWS_ACCESS_KEY_ID")
    secret = os.environ.get("MTURK_AWS_SECRET_ACCESS_KEY")
    session = boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=secret, region_name=REGION)
    if session.get_credentials() is None:
        raise MTurkCredentialsMissing(
            "No AWS credentials for MTurk: set MTURK_AWS_ACCESS_KEY_ID and MTURK_AWS_SECRET_ACCESS_KEY "
            "(or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) in the environment of the web and worker processes."
        )
    return session.client("mturk", region_name=REGION, endpoint_url=ENDPOINTS[environment])


# --------------------------------------------------------------------------- client
class MTurk:
    """The MTurk operations the lab uses, each one call (except the paginated listing).

    Parameters
    ----------
    environment : {"sandbox", "production"}
    client : boto3 MTurk client, optional
        Built from the environment's credentials when omitted; tests pass a stubbed one.
    audit : callable, optional
        ``audit(operation, params, response_or_None, error_message)`` after every call.
    """

    def __init__(self, *, environment: str, client: Any = None, audit: AuditCallback | None = None) -> None:
        self.environment = environment
        self.client = client if client is not None else make_client(environment)
        self.audit = audit

    def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        method = getattr(self.client, operation)
        try:
            response = method(**params)
        except ClientError as exc:
            err = exc.response.get("Error", {})
            message = f"MTurk refused {operation}: {err.get('Code', '')}: {err.get('Message', exc)}"
            self._audit(operation, params, None, message)
            raise MTurkRefused(message, operation=operation, code=err.get("Code", "")) from exc
        except ParamValidationError as exc:
            message = f"Invalid parameters for {operation}: {exc}"
            self._audit(operation, params, None, message)
            raise MTurkError(message, operation=operation, code="ParamValidation") from exc
        except BotoCoreError as exc:
            message = f"MTurk call {operation} failed: {exc}"
            self._audit(operation, params, None, message)
            raise MTurkError(message, operation=operation, code=type(exc).__name__) from exc
        response = {k: v for k, v in response.items() if k != "ResponseMetadata"}
        self._audit(operation, params, response, "")
        return response

    def _audit(self, operation: str, params: dict, response: dict | None, error: str) -> None:
        if self.audit is not None:
            self.audit(operation, params, response, error)

    def account_balance(self) -> dict[str, Any]:
        return self._call("get_account_balance")

    def create_hit(
        self,
        *,
        title: str,
        description: str,
        keywords: str,
        url: str,
        frame_height: int,
        reward: Decimal,
        max_assignments: int,
        assignment_duration_s: int,
        lifetime_s: int,
        auto_approval_delay_s: int,
        qualification_requirements: list[dict[str, Any]],
        unique_request_token: str,
        annotation: str = "",
    ) -> dict[str, Any]:
        """CreateHIT with an ExternalQuestion; returns the ``HIT`` structure."""
        params: dict[str, Any] = {
            "Title": title,
            "Description": description,
            "Keywords": keywords,
            "Question": external_question(url, frame_height),
            "Reward": money(reward),
            "MaxAssignments": max_assignments,
            "AssignmentDurationInSeconds": assignment_duration_s,
            "LifetimeInSeconds": lifetime_s,
            "AutoApprovalDelayInSeconds": auto_approval_delay_s,
            "QualificationRequirements": qualification_requirements,
            "UniqueRequestToken": unique_request_token,
        }
        if annotation:
            params["RequesterAnnotation"] = annotation
        return self._call("create_hit", **params)["HIT"]

    def list_assignments(self, hit_id: str, *, page_size: int = 100) -> Iterator[dict[str, Any]]:
        """Every assignment of a HIT in any status, following ``NextToken`` across pages."""
        token = None
        while True:
            params: dict[str, Any] = {
                "HITId": hit_id,
                "MaxResults": page_size,
                "AssignmentStatuses": ALL_ASSIGNMENT_STATUSES,
            }
            if token:
                params["NextToken"] = token
            page = self._call("list_assignments_for_hit", **params)
            yield from page.get("Assignments", [])
            token = page.get("NextToken")
            if not token or not page.get("Assignments"):
                return

    def approve(self, assignment_id: str, *, feedback: str = "") -> None:
        params: dict[str, Any] = {"AssignmentId": assignment_id}
        if feedback:
            params["RequesterFeedback"] = feedback
        self._call("approve_assignment", **params)

    def reject(self, assignment_id: str, *, feedback: str) -> None:
        """RejectAssignment; MTurk requires feedback and so do we (workers must know why)."""
        if not feedback or not feedback.strip():
            raise ValueError("a rejection needs feedback for the worker")
        self._call("reject_assignment", AssignmentId=assignment_id, RequesterFeedback=feedback)

    def send_bonus(
        self, *, worker_id: str, assignment_id: str, amount: Decimal, reason: str, unique_request_token: str
    ) -> None:
        self._call(
            "send_bonus",
            WorkerId=worker_id,
            AssignmentId=assignment_id,
            BonusAmount=money(amount),
            Reason=reason,
            UniqueRequestToken=unique_request_token,
        )

    def bonus_payments(self, assignment_id: str) -> list[dict[str, Any]]:
        """ListBonusPayments of one assignment (every page): what MTurk has actually paid."""
        found: list[dict[str, Any]] = []
        token = None
        while True:
            params: dict[str, Any] = {"AssignmentId": assignment_id, "MaxResults": 100}
            if token:
                params["NextToken"] = token
            page = self._call("list_bonus_payments", **params)
            found.extend(page.get("BonusPayments", []))
            token = page.get("NextToken")
            if not token or not page.get("BonusPayments"):
                return found

    def block(self, worker_id: str, *, reason: str) -> None:
        self._call("create_worker_block", WorkerId=worker_id, Reason=reason)

    def notify(self, worker_ids: list[str], *, subject: str, message: str) -> list[dict[str, Any]]:
        """NotifyWorkers in batches of 100 (MTurk's limit); returns the per-worker failures."""
        failures: list[dict[str, Any]] = []
        for start in range(0, len(worker_ids), 100):
            answer = self._call(
                "notify_workers", Subject=subject, MessageText=message, WorkerIds=worker_ids[start : start + 100]
            )
            failures.extend(answer.get("NotifyWorkersFailureStatuses", []))
        return failures

    def create_qualification_type(self, *, name: str, description: str) -> str:
        answer = self._call(
            "create_qualification_type", Name=name, Description=description, QualificationTypeStatus="Active"
        )
        return answer["QualificationType"]["QualificationTypeId"]

    def grant_qualification(self, qualification_id: str, worker_id: str, value: int = 1) -> None:
        self._call(
            "associate_qualification_with_worker",
            QualificationTypeId=qualification_id,
            WorkerId=worker_id,
            IntegerValue=value,
            SendNotification=False,
        )
