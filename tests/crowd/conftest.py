"""Fixtures of the crowd tests: staff in each role, a study, a stubbed MTurk client, the mini release."""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO

import boto3
import pytest
from botocore.stub import Stubber
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.test import Client

from crowd import mturk, services
from crowd.models import Study
from tests.support.paths import MINI


def stubbed_client(environment: str = "sandbox") -> tuple[object, Stubber]:
    """A real boto3 MTurk client whose HTTP layer is replaced by botocore's Stubber: every
    request is still validated against the service model, and unexpected calls fail."""
    client = boto3.client(
        "mturk",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        endpoint_url=mturk.ENDPOINTS[environment],
    )
    return client, Stubber(client)


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    client, stubber = stubbed_client()
    monkeypatch.setattr(services.platform, "mturk_client", lambda *, environment: client)
    with stubber:
        yield stubber
    stubber.assert_no_pending_responses()


def _user(name: str, *, staff: bool, group: str | None = None) -> User:
    user = User.objects.create_user(name, password="pw-" + name, is_staff=staff)
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def researcher(db: None) -> User:
    return _user("rita", staff=True, group="researcher")


@pytest.fixture
def viewer(db: None) -> User:
    return _user("victor", staff=True, group="viewer")


@pytest.fixture
def plain_user(db: None) -> User:
    """Logged in but neither staff nor in a role."""
    return _user("pat", staff=False)


@pytest.fixture
def staff_no_role(db: None) -> User:
    return _user("sam", staff=True)


def client_for(user: User | None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def study(db: None) -> Study:
    return Study.objects.create(
        name="pilot",
        platform=Study.Platform.MTURK,
        environment="sandbox",
        external_url="https://lab.example.org/start/?study=1&x=2",
        min_percent_approved=98,
        min_hits_approved=1000,
        locales="US, CA",
        retake_qualification_id="3QUALRETAKE000000000000000000",
    )


@pytest.fixture
def mini_release(db: None) -> None:
    call_command("import_ifllm", str(MINI), "--jobs", "1", stdout=StringIO())
