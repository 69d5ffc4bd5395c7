"""Ids in URLs are bounded: a number too large for the database is a 404, never a 500."""

import pytest

HUGE = "9" * 40


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        f"/api/study/tasks/{HUGE}/",
        f"/task/{HUGE}/turns/1/answer/",
        f"/crowd/task/{HUGE}/",
        f"/crowd/review/{HUGE}/",
        f"/analysis/figures/{HUGE}.png",
        f"/api/jobs/{HUGE}/",
    ],
)
def test_huge_ids_are_not_found(admin_client, url) -> None:
    assert admin_client.get(url).status_code == 404
    assert admin_client.get(url.replace(HUGE, "1")).status_code != 500
