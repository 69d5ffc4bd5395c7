"""Head in box with a face (issue 20, item 3): the REAL WebGazer on Chromium's fake camera playing
the face video gives head_in_box true on the chat samples, also on those with a gaze prediction,
while the chat page hides WebGazer's preview (whose box colour the page read before: 0 on every
sample). The helpers are in test_logger_browser.py."""

from __future__ import annotations

import pytest

from .test_logger_browser import _head_in_box

pytestmark = pytest.mark.django_db(transaction=True)


def test_head_in_box_with_a_face_real_webgazer(face_browser, asgi_server):
    gaze, stats = _head_in_box(face_browser, asgi_server, "head-face", teach=True)
    known = gaze["head_in_box"].dropna()
    assert len(known) == len(gaze) >= 20
    # The face video's eyes sit inside the box once the face mesh has found them.
    assert known.astype(bool).mean() > 0.8, known.tolist()
    assert (~gaze["no_face"]).mean() > 0.8
    # ... also on the samples with a gaze prediction (the ones the features and QC read).
    predicted = gaze[gaze["x"].notna()]
    assert len(predicted) >= 5, stats
    assert predicted["head_in_box"].astype(bool).all()
