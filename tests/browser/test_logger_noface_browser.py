"""Head in box without a face (issue 20, item 3): the REAL WebGazer on Chromium's default fake
camera (a test pattern, no face) gives head_in_box false and no_face on every chat sample. The
face case and the helpers are in test_logger_browser.py (its Chromium has the face video)."""

from __future__ import annotations

import pytest

from .test_logger_browser import _head_in_box

pytestmark = pytest.mark.django_db(transaction=True)


def test_head_in_box_without_a_face_real_webgazer(browser, asgi_server):
    gaze, stats = _head_in_box(browser, asgi_server, "head-noface")
    known = gaze["head_in_box"].dropna()
    assert len(known) == len(gaze) >= 20
    assert not known.astype(bool).any()
    assert gaze["no_face"].all()
