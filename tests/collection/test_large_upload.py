"""Issue 22, item 5: the admin's release upload stopped at 16 MiB with a raw JSON 413, while the
form promises IFLLM_IMPORT_MAX_UPLOAD_MB (1024 MB). Through uvicorn and real HTTP: a body over the
site-wide cap reaches the import form (spooled to disk) and is checked there; above the upload's
own cap, and anywhere else above the site cap, a person gets a 413 page, an API client JSON.
"""

from __future__ import annotations

import os
import re

import pytest
import requests
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from ifllm_site.body_limit import IMPORT_UPLOAD_PATH
from tests.support.servers import uvicorn_in_thread

pytestmark = pytest.mark.django_db(transaction=True)
MB = 1024 * 1024


def test_the_upload_path_is_the_import_view():
    assert reverse("admin:collection_importrun_import") == IMPORT_UPLOAD_PATH


@pytest.fixture
def admin_session(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.IFLLM_MAX_REQUEST_BODY = 4 * MB  # the site-wide cap, smaller here to keep the test quick
    user = User.objects.create_superuser("root", "root@example.org", "pw-root-1234")
    client = Client()
    client.force_login(user)
    return {"sessionid": client.cookies["sessionid"].value}


def _form(base: str, cookies: dict) -> tuple[requests.Session, str]:
    session = requests.Session()
    session.cookies.update(cookies)
    page = session.get(base + IMPORT_UPLOAD_PATH, timeout=30)
    assert page.status_code == 200, page.status_code
    return session, re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)


def test_an_upload_over_the_site_cap_reaches_the_form(admin_session, settings):
    settings.IFLLM_IMPORT_MAX_UPLOAD_MB = 12
    payload = os.urandom(9 * MB)  # over the 4 MB site cap, under the upload's own 12 MB
    with uvicorn_in_thread() as base:
        session, token = _form(base, admin_session)
        r = session.post(base + IMPORT_UPLOAD_PATH, data={"csrfmiddlewaretoken": token},
                         files={"archive": ("release.zip", payload)}, headers={"Referer": base + IMPORT_UPLOAD_PATH},
                         timeout=120, allow_redirects=False)
        # the form checked the archive (it is not a zip): no 413, a field error on the page
        assert r.status_code == 200 and "release.zip" in r.text and "413" not in r.text
        # over the upload's own cap: a page, not JSON
        big = os.urandom(13 * MB)
        r = session.post(base + IMPORT_UPLOAD_PATH, data={"csrfmiddlewaretoken": token},
                         files={"archive": ("release.zip", big)}, headers={"Referer": base + IMPORT_UPLOAD_PATH},
                         timeout=120, allow_redirects=False)
        assert r.status_code == 413 and r.headers["Content-Type"].startswith("text/html")
        assert "larger than this page accepts" in r.text


def test_other_paths_keep_the_site_cap_page_for_people_json_for_apis(admin_session):
    body = b"x" * (5 * MB)
    with uvicorn_in_thread() as base:
        r = requests.post(base + "/consent/", data=body, timeout=60,
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert r.status_code == 413 and r.headers["Content-Type"].startswith("text/html")
        r = requests.post(base + "/api/study/tasks/1/batches/", data=body, timeout=60,
                          headers={"Content-Type": "application/json"})
        assert r.status_code == 413 and r.headers["Content-Type"] == "application/json"
        # chunked (no Content-Length): cut off at the cap, the same answers
        r = requests.post(base + "/consent/", data=iter([b"x" * MB] * 5), timeout=60,
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert r.status_code == 413 and r.headers["Content-Type"].startswith("text/html")
