"""The reward-model run form: real fields with defaults, unknown keys refused, values stored."""

from __future__ import annotations

import pytest

from analysis.models import RewardModelRun
from analysis.services import DEFAULT_PARAMS

pytestmark = pytest.mark.django_db
ADD = "/admin/analysis/rewardmodelrun/add/"


def _form(**changes: str) -> dict:
    data = {name: ", ".join(map(str, v)) if isinstance(v, list) else v for name, v in DEFAULT_PARAMS.items()}
    data = {k: v for k, v in data.items() if v is not False}  # unchecked boxes are not posted
    data = {k: ("on" if v is True else str(v)) for k, v in data.items()}
    return {"name": "form test", "params": "{}", **data, **changes}


def test_add_page_shows_the_defaults_as_fields(admin_client) -> None:
    page = admin_client.get(ADD).content.decode()
    assert 'name="trees"' in page and f'value="{DEFAULT_PARAMS["trees"]}"' in page
    assert 'name="calibration_fit"' in page and "Default: crossfit." in page
    assert "{'seeds'" not in page  # no Python dict as help text


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"params": '{"tree": 50}'}, "params", "Unknown setting(s): tree"),
    ({"params": '{"trees": 50}'}, "params", "trees: set above"),
    ({"params": "[1, 2]"}, "params", "Must be a JSON object"),
    ({"trees": "many"}, "trees", "Enter a whole number"),
    ({"seeds": "0, x"}, "seeds", "integers separated by commas"),
    ({"calibration": "magic"}, "calibration", "Select a valid choice"),
])
def test_bad_values_are_field_errors(admin_client, changes: dict, field: str, message: str) -> None:
    response = admin_client.post(ADD, _form(**changes))
    assert response.status_code == 200
    assert message in response.context["adminform"].form.errors[field][0]
    assert not RewardModelRun.objects.exists()


def test_valid_form_stores_the_values_used(admin_client, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        response = admin_client.post(ADD, _form(trees="60", seeds="3, 4", calibration_fit="inner",
                                                params='{"use_cache": false}'))
    assert response.status_code == 302, response.content.decode()[:2000]
    run = RewardModelRun.objects.get()
    assert run.params["trees"] == 60 and run.params["seeds"] == [3, 4]
    assert run.params["calibration_fit"] == "inner" and run.params["use_cache"] is False
    assert run.params["selector_trees"] == DEFAULT_PARAMS["selector_trees"] and run.params["quality_filter"] is True
    page = admin_client.get(f"/admin/analysis/rewardmodelrun/{run.pk}/change/").content.decode()
    assert "<th>calibration_fit</th><td>inner</td>" in page  # the settings used, as a table


@pytest.fixture
def workers() -> list[str]:
    from collection.models import Worker

    names = ["worker_a", "worker_b", "worker_c"]
    for name in names:
        Worker.objects.create(pseudonym=name, platform=Worker._meta.get_field("platform").choices[0][0])
    return names


@pytest.mark.parametrize(("other", "message"), [
    ('{"train_workers": ["worker_a"], "test_workers": ["nobody", "worker_b"]}',
     "test_workers: 1 unknown worker id(s): nobody."),
    ('{"train_workers": ["ghost1", "ghost2"], "test_workers": ["worker_b"]}',
     "train_workers: 2 unknown worker id(s): ghost1, ghost2."),
    ('{"train_workers": ["worker_a", "worker_b"], "test_workers": ["worker_b"]}',
     "test_workers: 1 worker(s) are also training workers: worker_b."),
    ('{"train_workers": ["worker_a"]}', "test_workers: A transfer run needs both"),
    ('{"train_workers": "worker_a", "test_workers": ["worker_b"]}', "train_workers must be a list"),
])
def test_transfer_worker_ids_are_checked_before_the_job_starts(admin_client, workers, other, message) -> None:
    from jobs.models import Job

    response = admin_client.post(ADD, _form(params=other))
    assert response.status_code == 200
    assert any(message in e for e in response.context["adminform"].form.errors["params"]), \
        response.context["adminform"].form.errors
    assert not RewardModelRun.objects.exists() and not Job.objects.exists()


def test_known_transfer_workers_start_the_run(admin_client, workers, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        response = admin_client.post(ADD, _form(params='{"train_workers": ["worker_a", "worker_b"], '
                                                       '"test_workers": ["worker_c"]}'))
    assert response.status_code == 302, response.content.decode()[:2000]
    run = RewardModelRun.objects.get()
    assert run.params["test_workers"] == ["worker_c"] and run.job_id is not None
