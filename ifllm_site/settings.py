"""Django settings of IFllm Lab, read from environment variables.

With no environment at all the site runs for development: SQLite in ``var/db.sqlite3``, Celery
tasks executed in-process (no Redis), DEBUG on. Production sets at least ``DEBUG=false``,
``SECRET_KEY``, ``ALLOWED_HOSTS``, ``DATABASE_URL`` (PostgreSQL) and ``REDIS_URL``.

Environment variables:

* ``DEBUG`` (default ``true``): ``1/true/yes/on`` or ``0/false/no/off``.
* ``SECRET_KEY``: required when ``DEBUG`` is off; a fixed development key otherwise.
* ``ALLOWED_HOSTS`` (default ``localhost,127.0.0.1,[::1]``): comma separated.
* ``DATABASE_URL`` (default SQLite file ``var/db.sqlite3``), parsed by dj-database-url.
* ``REDIS_URL``: Celery broker and result backend. Unset means tasks run eagerly in the web
  process, so the site works without any service running.
* ``LOG_LEVEL`` (default ``INFO``).
* ``IFLLM_PSEUDONYM_KEY``: HMAC key for worker pseudonyms; derived from ``SECRET_KEY`` if unset.
"""

import hashlib
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
VAR_DIR.mkdir(exist_ok=True)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(name: str, default: bool) -> bool:
    """Parse a boolean variable strictly, so that a typo such as ``DEBUG=flase`` fails loudly."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true/false)")


def env_list(name: str, default: str) -> list[str]:
    """Comma-separated list, empty items dropped."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# --- Core -------------------------------------------------------------------------------------

DEBUG = env_bool("DEBUG", True)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "django-insecure-ifllm-lab-development-key-do-not-use-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "jobs",
    "collection",
    "crowd",
    "analysis",
    "alignment",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # WhiteNoise serves static files from uvicorn too (Django's runserver-only static view is
    # not available under ASGI/uvicorn). In DEBUG it serves straight from the finders.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "ifllm_site.urls"
WSGI_APPLICATION = "ifllm_site.wsgi.application"
ASGI_APPLICATION = "ifllm_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "0")),
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files -----------------------------------------------------------------------------

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS: list = [BASE_DIR / "static"]
# WebGazer comes from npm (package.json); served as static/vendor/webgazer/webgazer.js once
# ``npm ci`` has run. Left out otherwise so that a checkout without node_modules still starts.
_WEBGAZER_DIST = BASE_DIR / "node_modules" / "webgazer" / "dist"
if _WEBGAZER_DIST.is_dir():
    STATICFILES_DIRS.append(("vendor/webgazer", _WEBGAZER_DIST))

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Compressed but not manifest storage: a manifest would make every {% static %} fail in
    # tests and dev until collectstatic has run.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# --- Django REST framework / OpenAPI ----------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Closed by default: a view open to anonymous study participants says so explicitly.
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
    ],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "IFllm Lab API",
    "DESCRIPTION": "Collection, analysis and alignment of implicit-feedback LLM data.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "collection.openapi.add_answer_stream",
    ],
}

# --- Celery -----------------------------------------------------------------------------------
# Queues:
#   default  jobs.* and collection.* (imports, exports, bookkeeping; short)
#   cpu      analysis.* (feature extraction, reward models; CPU bound)
#   gpu      alignment.* (training; one per GPU, run with --concurrency=1)
# Routing is by task name with globs below; ``jobs.runner.job_task(queue=...)`` can override it
# for one task. ``jobs.services.job_enqueue`` always sends to the queue stored on the Job.

REDIS_URL = os.environ.get("REDIS_URL", "")

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or None
# Without Redis, tasks run in the web process as soon as they are sent (after the transaction
# commits). Errors are recorded on the Job by the runner and must not break the request.
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = False

CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES = (Queue("default"), Queue("cpu"), Queue("gpu"))
CELERY_TASK_ROUTES = {
    "jobs.*": {"queue": "default"},
    "collection.*": {"queue": "default"},
    "crowd.*": {"queue": "default"},
    "analysis.*": {"queue": "cpu"},
    "alignment.*": {"queue": "gpu"},
}
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_RESULT_EXPIRES = 24 * 3600
# A worker reserves one message at a time: jobs are long, and a prefetched message would wait
# behind a training run while another worker sits idle.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Job tasks are acks_late (see jobs.runner). With Redis an unacknowledged message is redelivered
# after the visibility timeout, so it must exceed the longest job (training runs take hours).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 12 * 3600}

# --- Logging ----------------------------------------------------------------------------------

LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "console": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "console"},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
    },
}

# --- IFllm Lab settings (IFLLM_* namespace) ---------------------------------------------------

# Key of the HMAC that turns release worker ids into pseudonyms. Derived from SECRET_KEY by
# default so development needs no setup; set it explicitly in production so that rotating
# SECRET_KEY does not change every pseudonym.
IFLLM_PSEUDONYM_KEY = os.environ.get("IFLLM_PSEUDONYM_KEY") or hashlib.sha256(
    f"ifllm-pseudonym:{SECRET_KEY}".encode()
).hexdigest()
# Lines of worker log kept on each Job (older lines are dropped).
IFLLM_JOB_LOG_LINES = int(os.environ.get("IFLLM_JOB_LOG_LINES", "200"))
