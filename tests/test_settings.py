"""Settings read from the environment: each case evaluates ifllm_site/settings.py afresh."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

SETTINGS_FILE = Path(__file__).resolve().parent.parent / "ifllm_site" / "settings.py"
ENV_VARS = [
    "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL", "IFLLM_PSEUDONYM_KEY",
    "IFLLM_JOBS_EAGER",
]


@pytest.fixture
def load(monkeypatch):
    """Evaluate the settings module with exactly the given variables set."""

    def _load(**env: str) -> dict:
        for name in ENV_VARS:
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return runpy.run_path(str(SETTINGS_FILE))

    return _load


def test_defaults_need_no_services(load):
    s = load()
    assert s["DEBUG"] is True
    assert s["DATABASES"]["default"]["ENGINE"] == "django.db.backends.sqlite3"
    assert s["DATABASES"]["default"]["NAME"] == str(s["BASE_DIR"] / "var" / "db.sqlite3")
    assert (s["BASE_DIR"] / "var").is_dir()
    # Jobs go through a folder broker to the worker `make run` starts, never into the request.
    assert s["CELERY_TASK_ALWAYS_EAGER"] is False
    assert s["CELERY_BROKER_URL"] == "filesystem://"
    assert Path(s["CELERY_BROKER_TRANSPORT_OPTIONS"]["data_folder_in"]).is_dir()
    assert s["DATABASES"]["default"]["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert s["CELERY_TASK_EAGER_PROPAGATES"] is False
    assert s["ALLOWED_HOSTS"] == ["localhost", "127.0.0.1", "[::1]"]
    assert s["SECRET_KEY"]


def test_database_and_redis_urls(load):
    s = load(
        DATABASE_URL="postgres://u:p@db.example:5433/ifllm",
        REDIS_URL="redis://cache.example:6379/2",
    )
    db = s["DATABASES"]["default"]
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["HOST"], db["PORT"], db["NAME"], db["USER"]) == ("db.example", 5433, "ifllm", "u")
    assert s["CELERY_BROKER_URL"] == "redis://cache.example:6379/2"
    assert s["CELERY_RESULT_BACKEND"] == "redis://cache.example:6379/2"
    assert s["CELERY_TASK_ALWAYS_EAGER"] is False


def test_production_requires_a_secret_key(load):
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY"):
        load(DEBUG="false")
    s = load(DEBUG="false", SECRET_KEY="s3cret", ALLOWED_HOSTS="lab.example, api.example")
    assert s["DEBUG"] is False and s["SECRET_KEY"] == "s3cret"
    assert s["ALLOWED_HOSTS"] == ["lab.example", "api.example"]


def test_debug_typo_fails_loudly(load):
    with pytest.raises(ImproperlyConfigured, match="DEBUG"):
        load(DEBUG="flase")


def test_pseudonym_key_follows_secret_key_unless_set(load):
    a = load(SECRET_KEY="one")["IFLLM_PSEUDONYM_KEY"]
    b = load(SECRET_KEY="two")["IFLLM_PSEUDONYM_KEY"]
    assert a != b and "one" not in a
    assert load(SECRET_KEY="one", IFLLM_PSEUDONYM_KEY="fixed")["IFLLM_PSEUDONYM_KEY"] == "fixed"


def test_webgazer_is_served_only_when_installed(load):
    s = load()
    webgazer = s["BASE_DIR"] / "node_modules" / "webgazer" / "dist"
    entries = [e for e in s["STATICFILES_DIRS"] if isinstance(e, tuple)]
    if webgazer.is_dir():
        assert entries == [("vendor/webgazer", webgazer)]
    else:
        assert entries == []


def test_installed_apps_and_queues(load):
    s = load()
    for app in ["rest_framework", "drf_spectacular", "jobs", "collection", "analysis", "alignment"]:
        assert app in s["INSTALLED_APPS"]
    assert [q.name for q in s["CELERY_TASK_QUEUES"]] == ["default", "cpu", "gpu"]
    assert s["CELERY_WORKER_PREFETCH_MULTIPLIER"] == 1


@pytest.mark.parametrize(
    ("task", "queue"),
    [
        ("analysis.extract", "cpu"),
        ("alignment.train", "gpu"),
        ("collection.import_release", "default"),
        ("jobs.count", "default"),
        ("elsewhere.thing", "default"),
    ],
)
def test_celery_router_sends_tasks_to_their_queue(task, queue):
    from ifllm_site.celery import app

    assert app.amqp.router.route({}, task)["queue"].name == queue


def test_webgazer_static_file_is_found_when_installed(settings):
    from django.contrib.staticfiles import finders

    if not (settings.BASE_DIR / "node_modules" / "webgazer" / "dist").is_dir():
        pytest.skip("node_modules not installed (run scripts/setup.sh)")
    assert finders.find("vendor/webgazer/webgazer.js")


def test_jobs_can_run_eagerly_on_request(load):
    assert load(IFLLM_JOBS_EAGER="true")["CELERY_TASK_ALWAYS_EAGER"] is True
