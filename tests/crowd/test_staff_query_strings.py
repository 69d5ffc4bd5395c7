"""Issue 22, item 6: staff-page query strings that were a 500 (``?study=abc`` on the QC page,
non-finite thresholds, ``?job=abc`` on the import page); now ignored or a clear page."""

from __future__ import annotations

import pytest
from django.urls import reverse

from .conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("params", [
    {"study": "abc"}, {"study": "1e5"}, {"study": "9" * 40}, {"study": "-1"},
    {"min_calibration_score": "nan"}, {"min_calibration_score": "inf"}, {"min_calibration_score": "1e999"},
    {"source": "x" * 300, "level": "worker"},
])
def test_qc_page_query_strings_are_never_a_500(researcher, study, params):
    client = client_for(researcher)
    client.raise_request_exception = False
    assert client.get(reverse("crowd:qc_plots"), params).status_code == 200
