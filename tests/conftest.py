"""Suite-wide fixtures.

Tasks run eagerly (in-process) in every test, even when REDIS_URL is set for the suite, so that no
test silently leaves messages in Redis waiting for a worker that does not exist. Tests marked
``real_celery`` opt out and talk to the real broker.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _celery_eager(request: pytest.FixtureRequest) -> Iterator[None]:
    from ifllm_site.celery import app

    if request.node.get_closest_marker("real_celery"):
        yield
        return
    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, False
    try:
        yield
    finally:
        app.conf.task_always_eager, app.conf.task_eager_propagates = saved
