"""Django settings of IFllm Lab, read from environment variables.

With no environment at all the site runs for development: SQLite in ``var/db.sqlite3``, Celery
tasks sent through a folder broker to the worker ``make run`` starts (no Redis), DEBUG on.
Production sets at least ``DEBUG=false``,
``SECRET_KEY``, ``ALLOWED_HOSTS``, ``DATABASE_URL`` (PostgreSQL) and ``REDIS_URL``.

Environment variables:

* ``DEBUG`` (default ``true``): ``1/true/yes/on`` or ``0/false/no/off``.
* ``SECRET_KEY``: required when ``DEBUG`` is off; a fixed development key otherwise.
* ``ALLOWED_HOSTS`` (default ``localhost,127.0.0.1,[::1]``): comma separated.
* ``DATABASE_URL`` (default SQLite file ``var/db.sqlite3``), parsed by dj-database-url.
* ``REDIS_URL``: Celery broker and result backend. Unset means the broker is the folder
  ``var/broker`` (no service needed); ``make run`` starts a worker that reads it.
* ``IFLLM_BROKER_DIR`` (default ``var/broker``): the folder broker used without Redis.
* ``IFLLM_JOBS_EAGER`` (default ``false``): run jobs inside the process that starts them.
* ``LOG_LEVEL`` (default ``INFO``).
* ``IFLLM_PSEUDONYM_KEY``: HMAC key for worker pseudonyms; derived from ``SECRET_KEY`` if unset.
* HTTPS (each on by default when ``DEBUG`` is off): ``SECURE_SSL_REDIRECT``,
  ``SESSION_COOKIE_SECURE``, ``CSRF_COOKIE_SECURE``, ``SECURE_HSTS_SECONDS`` (31536000),
  ``SECURE_HSTS_INCLUDE_SUBDOMAINS``, ``SECURE_HSTS_PRELOAD``; ``SECURE_PROXY_SSL_HEADER=true``
  trusts ``X-Forwarded-Proto`` from the proxy in front (set it only behind one).
* ``IFLLM_MAX_REQUEST_BODY`` (default 16 MiB): larger bodies get 413 before anything else runs.
* ``AXES_FAILURE_LIMIT`` (5) / ``AXES_COOLOFF_MINUTES`` (15): failed logins per user and address
  before the login is locked for that long.
"""

import hashlib
import os
from datetime import timedelta
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
    "axes",
    "csp",
    "access",
    "jobs",
    "collection",
    "crowd",
    "analysis",
    "alignment",
]

MIDDLEWARE = [
    # First: refuse an oversized body before sessions, authentication or CSRF look at the request.
    "ifllm_site.body_limit.RequestBodyLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # A NUL (%00) in any parameter is a 400 naming the field, before PostgreSQL can see it;
    # a body over DATA_UPLOAD_MAX_MEMORY_SIZE is a 413 giving the limits.
    "collection.middleware.RequestGuardMiddleware",
    "csp.middleware.CSPMiddleware",
    # WhiteNoise serves static files from uvicorn too (Django's runserver-only static view is
    # not available under ASGI/uvicorn). In DEBUG it serves straight from the finders.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "collection.middleware.study_pages_no_store",
    # Last, as django-axes asks: it turns a locked-out login into the lockout response.
    "axes.middleware.AxesMiddleware",
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
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # `make run` serves one worker's traffic (gaze batches every few seconds while questions are
    # asked) from SQLite: WAL lets reads go on during a write, IMMEDIATE takes the write lock at
    # BEGIN (no deadlocked upgrade from a read lock, which busy_timeout cannot wait out), and a
    # writer waits up to 20 s for the lock instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update({
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    })
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    # django-axes first: it refuses logins of a locked-out user/address before the password is
    # checked (admin login throttling).
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

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

# --- Deployment security ----------------------------------------------------------------------
# Everything on by default when DEBUG is off, so a production start is safe without extra
# variables; each can be turned off by environment (e.g. SECURE_SSL_REDIRECT=false when the proxy
# redirects already). `manage.py check --deploy --fail-level WARNING` is clean with these
# (tests/site/test_deploy.py).

SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0" if DEBUG else "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True

# Cap on request bodies, enforced first (ifllm_site.body_limit), above the largest legitimate
# body (a full trajectory batch; DATA_UPLOAD_MAX_MEMORY_SIZE is the per-view limit under it).
IFLLM_MAX_REQUEST_BODY = int(os.environ.get("IFLLM_MAX_REQUEST_BODY", str(16 * 1024 * 1024)))

# Content security policy (django-csp). Scripts only from the site itself (and a per-response
# nonce for the two small inline scripts); 'wasm-unsafe-eval' lets MediaPipe's face mesh
# (WebGazer's tracker) compile its WebAssembly, and blob: workers are what it and TF.js start.
# WebGazer's bundle also calls eval: the two pages that run it add 'unsafe-eval' for themselves
# (collection.views.webgazer_csp), every other page is without it.
# Inline style attributes stay allowed: the admin and our SVG figures use them. No frame-ancestors:
# MTurk shows the study in an iframe (X-Frame-Options decides that).
from csp.constants import NONCE, NONE, SELF, WASM_UNSAFE_EVAL  # noqa: E402

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE, WASM_UNSAFE_EVAL],
        "worker-src": [SELF, "blob:"],
        "style-src": [SELF, "'unsafe-inline'"],
        "img-src": [SELF, "data:", "blob:"],
        "media-src": [SELF, "blob:", "mediastream:"],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF, "https://*.mturk.com", "https://app.prolific.com"],
    },
}

# Admin login throttling (django-axes): after AXES_FAILURE_LIMIT failures for one username from
# one address, that pair is locked out for AXES_COOLOFF_MINUTES (HTTP 429).
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("AXES_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Axes' own admin pages offer an action that declares no permission (any staff user could run
# it); lockouts are inspected and lifted with `manage.py axes_list_attempts` / `axes_reset`.
AXES_ENABLE_ADMIN = False
# The client address of a login attempt: forwarded headers count only from the proxies named in
# IFLLM_TRUSTED_PROXIES (comma-separated addresses or networks; scripts/run.sh passes the same list
# to uvicorn's --forwarded-allow-ips). See ifllm_site/client_ip.py.
IFLLM_TRUSTED_PROXIES = [p.strip() for p in os.environ.get("IFLLM_TRUSTED_PROXIES", "").split(",") if p.strip()]
AXES_CLIENT_IP_CALLABLE = "ifllm_site.client_ip.client_ip"

# --- Django REST framework / OpenAPI ----------------------------------------------------------

# Request body limit. It must hold the largest gaze/mouse batch the API advertises
# (collection.serializers.MAX_BATCH_SAMPLES samples at full precision; a system check compares
# them); larger bodies get a 413 and the page splits the batch.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("IFLLM_MAX_BODY_BYTES", str(4 * 1024 * 1024)))

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
    # JSON bodies: size-limited (413) and depth-limited (400) instead of DRF's unbounded parser.
    "DEFAULT_PARSER_CLASSES": [
        "collection.parsers.SafeJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
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

# Without Redis the broker is a folder (kombu's filesystem transport): ``make run`` starts a
# Celery worker beside uvicorn that reads it, so a job never runs inside the request that
# started it, and development runs the same worker code as production. Chosen over an
# in-process thread pool because training and forests are CPU bound (they would starve the
# web server's event loop of the GIL) and a worker survives uvicorn's reloads.
# ``IFLLM_JOBS_EAGER=true`` runs jobs in-process instead (scripts without a worker).
BROKER_DIR = Path(os.environ.get("IFLLM_BROKER_DIR") or VAR_DIR / "broker")
CELERY_BROKER_URL = REDIS_URL or "filesystem://"
CELERY_RESULT_BACKEND = REDIS_URL or None
if not REDIS_URL:
    for _sub in ("messages", "processed", "control"):
        (BROKER_DIR / _sub).mkdir(parents=True, exist_ok=True)
    _BROKER_FS_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "messages"),
        "data_folder_out": str(BROKER_DIR / "messages"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
# Errors are recorded on the Job by the runner and must not break the request.
CELERY_TASK_ALWAYS_EAGER = env_bool("IFLLM_JOBS_EAGER", False)
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
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {"visibility_timeout": 12 * 3600} if REDIS_URL else _BROKER_FS_OPTIONS
)
# The worker writes progress while the web process reads and writes: on SQLite, WAL lets reads
# go on during a write, and IMMEDIATE transactions wait (timeout) instead of failing with
# "database is locked" when two processes upgrade their locks at once.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"init_command": "PRAGMA journal_mode=WAL;", "transaction_mode": "IMMEDIATE", "timeout": 20}
    )

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
# Release imports from the admin (collection.services.release_upload): the largest archive staff
# may upload (bigger ones are copied to the server and imported by path), and the most an archive
# may unpack to (a guard against archives that would fill the disk).
IFLLM_IMPORT_MAX_UPLOAD_MB = float(os.environ.get("IFLLM_IMPORT_MAX_UPLOAD_MB", "1024"))
IFLLM_IMPORT_MAX_UNPACKED_MB = float(os.environ.get("IFLLM_IMPORT_MAX_UNPACKED_MB", "20480"))

# Entry checks (collection.services.identity.entry_admit): a known platform worker id with a new
# assignment is asked to the platform through this function (crowd.prolific: Prolific's API when
# PROLIFIC_API_TOKEN is set); unverified new assignments per worker id are limited per hour.
IFLLM_ENTRY_VERIFIER = "crowd.prolific.entry_verify"
# The Prolific codes a participant gets (completed; screened out or partial payment after a failed
# calibration), from the crowd study whose Prolific id the entry carried; else the study settings.
IFLLM_PROLIFIC_COMPLETION = "crowd.services.prolific.site_completion"
IFLLM_NEW_ASSIGNMENTS_PER_HOUR = int(os.environ.get("IFLLM_NEW_ASSIGNMENTS_PER_HOUR", "3"))

# The study monitor (crowd.selectors.study_monitor) compares the reward per hour at the median
# completion time with the platform's minimum, in the currency rewards are set in on it.
# Prolific: "the minimum pay allowed is £6.00 / $8.00 per hour", judged at the median completion
# time (Prolific researcher help, "Prolific's payment principles", checked 2026-12-05). MTurk sets
# no hourly minimum; lab studies follow the institution's rules (set one here). None: no minimum.
IFLLM_PLATFORM_MIN_PAY_PER_HOUR: dict[str, tuple[str, str] | None] = {
    "prolific": ("GBP", os.environ.get("IFLLM_PROLIFIC_MIN_PAY_PER_HOUR", "6.00")),
    "mturk": None,
    "lab": None,
}
# Currency of Study.reward per platform where no minimum names one (MTurk pays in USD).
IFLLM_PLATFORM_CURRENCY: dict[str, str] = {"prolific": "GBP", "mturk": "USD", "lab": ""}
