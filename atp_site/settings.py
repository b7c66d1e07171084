"""ATP settings, read from the environment; no variables at all gives the embedded setup."""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from atp_site.lib.env import (
    env_bool,
    env_float,
    env_int,
    env_list,
    env_secret,
    env_str,
    generated_secret,
)

BASE_DIR = Path(__file__).resolve().parent.parent

# Where the embedded setup keeps its SQLite file and generated secrets.
DATA_DIR = Path(env_str("ATP_DATA_DIR", str(BASE_DIR / "var")))
DATA_DIR.mkdir(parents=True, exist_ok=True)
(DATA_DIR / "static").mkdir(exist_ok=True)


def _embedded_secret(filename: str) -> str:
    """A random secret generated on first run and kept beside the SQLite database.

    Only the embedded setup may rely on it: with DATABASE_URL set, the server and the Celery
    processes refuse to start unless every secret is given (atp_site.lib.startup).
    """
    return generated_secret(DATA_DIR / filename)


DEBUG = env_bool("ATP_DEBUG", False)
SECRET_KEY = env_secret("ATP_SECRET_KEY") or _embedded_secret("secret_key")
# Earlier secret keys, comma-separated, still accepted for sessions, CSRF and signed links
# while a rotation settles (Django's SECRET_KEY_FALLBACKS); docs/production.md#rotating-secrets.
SECRET_KEY_FALLBACKS = [k for k in env_secret("ATP_SECRET_KEY_FALLBACKS").split(",") if k.strip()]
# Key for provider credentials and stored bodies; a comma-separated list rotates keys
# (the first encrypts, all decrypt).
ATP_ENCRYPTION_KEYS = env_list("ATP_ENCRYPTION_KEYS") or [
    env_secret("ATP_ENCRYPTION_KEY") or _embedded_secret("encryption_key")
]

# Audit chain signing keys as KEY_ID:SECRET, comma-separated; the first signs new events,
# all verify (rotate by putting a new key first and keeping the old ones).
ATP_AUDIT_SIGNING_KEYS = env_list("ATP_AUDIT_SIGNING_KEYS") or [
    "k1:" + (env_secret("ATP_AUDIT_SIGNING_KEY") or _embedded_secret("audit_signing_key"))
]

# Retention defaults in days, when no retention policy covers a record.
ATP_AUDIT_RETENTION_DAYS = env_int("ATP_AUDIT_RETENTION_DAYS", 2555, minimum=1)
ATP_REQUEST_LOG_RETENTION_DAYS = env_int("ATP_REQUEST_LOG_RETENTION_DAYS", 400, minimum=1)
# Stored prompt and response bodies (tenants with store_bodies on), classification "bodies".
ATP_BODY_RETENTION_DAYS = env_int("ATP_BODY_RETENTION_DAYS", 30, minimum=1)

ALLOWED_HOSTS = env_list("ATP_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("ATP_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "django_htmx",
    "channels",
    "atp_site.console",
    "apps.tenants",
    "apps.providers",
    "apps.routing",
    "apps.policies",
    "apps.costs",
    "apps.audit",
]

MIDDLEWARE = [
    "atp_site.lib.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "apps.audit.middleware.AuditActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "atp_site.urls"
ASGI_APPLICATION = "atp_site.asgi.application"

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
                "atp_site.console.context.console",
            ],
        },
    },
]

# --- database -------------------------------------------------------------------------
# Either may come from a file (DATABASE_URL_FILE, REDIS_URL_FILE): they hold passwords.
DATABASE_URL = env_secret("DATABASE_URL")
if DATABASE_URL:
    if not DATABASE_URL.startswith(("postgres://", "postgresql://", "sqlite://")):
        raise ImproperlyConfigured(
            "DATABASE_URL must be a postgres://user@host:port/name or sqlite:///path URL."
        )
    DATABASES = {
        "default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(DATA_DIR / "atp.sqlite3"),
            # Keep the file open: reopening it per batch of request logs is measurable.
            "CONN_MAX_AGE": None,
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- cache, channel layer, Celery -----------------------------------------------------
REDIS_URL = env_secret("REDIS_URL")
if REDIS_URL:
    if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured("REDIS_URL must be a redis://host:port/db URL.")
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("ATP_REDIS_PREFIX", "atp"),
            "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient"},
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": env_str("ATP_REDIS_PREFIX", "atp")},
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    CELERY_TASK_ALWAYS_EAGER = env_bool("ATP_CELERY_EAGER", False)
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CELERY_BROKER_URL = "memory://"
    CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
# Without a worker (embedded or eager), the web process runs the periodic schedule itself.
ATP_LOCAL_BEAT = env_bool("ATP_LOCAL_BEAT", CELERY_TASK_ALWAYS_EAGER)
CELERY_RESULT_BACKEND = None
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
# --- background jobs (apps.audit.jobs) ---
# Hours a finished job's result (file under ATP_DATA_DIR/jobs, or JSON) is kept.
ATP_JOB_RESULT_HOURS = env_int("ATP_JOB_RESULT_HOURS", 24, minimum=1)
# --- end background jobs ---

# --- auth, sessions -------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/admin/login/"
SESSION_COOKIE_HTTPONLY = True
ANONYMOUS_USER_NAME = None

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = True

# --- management REST API --------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.tenants.api.authentication.AdminTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Model, custom and per-tenant (django-guardian) permissions for each action, never
    # is_staff; a view that declares no permission is open to superusers only.
    "DEFAULT_PERMISSION_CLASSES": ["apps.tenants.api.permissions.ActionPermission"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
        "rest_framework.filters.SearchFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "atp_site.lib.drf.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "ATP management API",
    "DESCRIPTION": "Tenants, API keys, providers and model deployments.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
}

# --- the data plane -------------------------------------------------------------------
# Largest accepted /v1 request body, in bytes.
ATP_MAX_BODY_BYTES = env_int("ATP_MAX_BODY_BYTES", 8 * 1024 * 1024, minimum=1024)
# Input limits of the /v1 endpoints (each violation is a 400 naming the parameter): messages
# per request, characters per message (its text and text parts), tools per request, inputs
# per embeddings request. A body nested deeper than 128 levels is refused as well.
ATP_MAX_MESSAGES = env_int("ATP_MAX_MESSAGES", 2048, minimum=1)
ATP_MAX_MESSAGE_CHARS = env_int("ATP_MAX_MESSAGE_CHARS", 4 * 1024 * 1024, minimum=1)
ATP_MAX_TOOLS = env_int("ATP_MAX_TOOLS", 128, minimum=0)
ATP_MAX_EMBEDDING_INPUTS = env_int("ATP_MAX_EMBEDDING_INPUTS", 2048, minimum=1)
# Upstream timeouts (seconds) used when a provider does not set its own.
ATP_UPSTREAM_CONNECT_TIMEOUT = env_float("ATP_UPSTREAM_CONNECT_TIMEOUT", 5.0, minimum=0.01)
ATP_UPSTREAM_FIRST_BYTE_TIMEOUT = env_float("ATP_UPSTREAM_FIRST_BYTE_TIMEOUT", 60.0, minimum=0.01)
ATP_UPSTREAM_TOTAL_TIMEOUT = env_float("ATP_UPSTREAM_TOTAL_TIMEOUT", 600.0, minimum=0.01)
# How often (seconds) a process checks whether its configuration snapshot is stale.
ATP_SNAPSHOT_CHECK_SECONDS = env_float("ATP_SNAPSHOT_CHECK_SECONDS", 1.0, minimum=0.0)
# Write-behind queue for request logs: flush interval (seconds) and batch size.
ATP_WRITE_BEHIND_INTERVAL = env_float("ATP_WRITE_BEHIND_INTERVAL", 0.5, minimum=0.01)
ATP_WRITE_BEHIND_BATCH = env_int("ATP_WRITE_BEHIND_BATCH", 500, minimum=1)

# Retries of one deployment (a route's `retry` overrides them): tries in total, backoff
# start (ms), growth factor, ceiling (ms) and jitter (a fraction, +/-).
# Response cache (docs/cache.md): in-process LRU bounds when embedded, Redis otherwise.
ATP_CACHE_MAX_ENTRIES = env_int("ATP_CACHE_MAX_ENTRIES", 10_000, minimum=1)
ATP_CACHE_MAX_BYTES = env_int("ATP_CACHE_MAX_BYTES", 128 << 20, minimum=1024)
ATP_CACHE_COMPRESS_ABOVE = env_int("ATP_CACHE_COMPRESS_ABOVE", 2048, minimum=0)
ATP_CACHE_REDIS_TIMEOUT = env_float("ATP_CACHE_REDIS_TIMEOUT", 0.25, minimum=0.01)
ATP_CACHE_SEMANTIC = env_bool("ATP_CACHE_SEMANTIC", True)
ATP_CACHE_SEMANTIC_TIMEOUT = env_float("ATP_CACHE_SEMANTIC_TIMEOUT", 0.5, minimum=0.01)
ATP_CACHE_SEMANTIC_MAX_PENDING = env_int("ATP_CACHE_SEMANTIC_MAX_PENDING", 32, minimum=1)
ATP_CACHE_SEMANTIC_MAX_SCOPES = env_int("ATP_CACHE_SEMANTIC_MAX_SCOPES", 1000, minimum=1)
ATP_CACHE_SEMANTIC_MAX_PER_SCOPE = env_int("ATP_CACHE_SEMANTIC_MAX_PER_SCOPE", 1000, minimum=1)
ATP_CACHE_EMBED_THREADS = env_int("ATP_CACHE_EMBED_THREADS", 1, minimum=1)

# With Redis: journal queued rows there so a crashed process's rows are written by another.
ATP_WRITE_BEHIND_JOURNAL = env_bool("ATP_WRITE_BEHIND_JOURNAL", True)
# A process silent this long counts as stopped; its journal is then recovered.
ATP_WRITE_BEHIND_ALIVE_SECONDS = env_float("ATP_WRITE_BEHIND_ALIVE_SECONDS", 30.0, minimum=1.0)

# Requests one /v1/realtime WebSocket may run at once.
ATP_REALTIME_MAX_IN_FLIGHT = env_int("ATP_REALTIME_MAX_IN_FLIGHT", 32, minimum=1)

# Bearer token Prometheus sends to GET /metrics; unset: loopback and staff only.
ATP_METRICS_TOKEN = env_secret("ATP_METRICS_TOKEN") or ""
# With several worker processes per instance (uvicorn --workers N): a directory they share
# (a tmpfs or emptyDir per instance) where each writes its figures every
# ATP_METRICS_WRITE_SECONDS, so one scrape answers for the instance. Empty: per process.
ATP_METRICS_DIR = env_str("ATP_METRICS_DIR", "")
ATP_METRICS_WRITE_SECONDS = env_float("ATP_METRICS_WRITE_SECONDS", 5.0, minimum=0.1)

# How a model name's several deployments share its traffic: weighted | least_inflight |
# lowest_latency (routes choose with their own strategy).
ATP_LOAD_BALANCING = env_str("ATP_LOAD_BALANCING", "weighted")
if ATP_LOAD_BALANCING not in ("weighted", "least_inflight", "lowest_latency"):
    raise ImproperlyConfigured(
        "ATP_LOAD_BALANCING must be weighted, least_inflight or lowest_latency."
    )
ATP_RETRY_MAX_ATTEMPTS = env_int("ATP_RETRY_MAX_ATTEMPTS", 2, minimum=1)
ATP_RETRY_INITIAL_BACKOFF_MS = env_float("ATP_RETRY_INITIAL_BACKOFF_MS", 100.0, minimum=0.0)
ATP_RETRY_MULTIPLIER = env_float("ATP_RETRY_MULTIPLIER", 2.0, minimum=1.0)
ATP_RETRY_MAX_BACKOFF_MS = env_float("ATP_RETRY_MAX_BACKOFF_MS", 30_000.0, minimum=0.0)
ATP_RETRY_JITTER = env_float("ATP_RETRY_JITTER", 0.25, minimum=0.0)
# A request's latency budget (seconds from arrival): no retry or fallback starts after it,
# and backoff waits never reach it. Attempts already running keep their own timeouts.
ATP_RETRY_BUDGET_SECONDS = env_float("ATP_RETRY_BUDGET_SECONDS", 60.0, minimum=0.1)

# Circuit breakers, one per deployment: the breaker opens when at least MIN_REQUESTS calls
# in the last WINDOW_SECONDS failed at FAILURE_RATE or more; after COOLDOWN_SECONDS it lets
# HALF_OPEN_PROBES calls through, and closes on a probe's success. With Redis, a process
# re-reads a closed breaker's shared state at most every SYNC_SECONDS.
ATP_BREAKER_ENABLED = env_bool("ATP_BREAKER_ENABLED", True)
ATP_BREAKER_WINDOW_SECONDS = env_float("ATP_BREAKER_WINDOW_SECONDS", 30.0, minimum=1.0)
ATP_BREAKER_MIN_REQUESTS = env_int("ATP_BREAKER_MIN_REQUESTS", 10, minimum=1)
ATP_BREAKER_FAILURE_RATE = env_float("ATP_BREAKER_FAILURE_RATE", 0.5, minimum=0.01)
ATP_BREAKER_COOLDOWN_SECONDS = env_float("ATP_BREAKER_COOLDOWN_SECONDS", 30.0, minimum=0.1)
ATP_BREAKER_HALF_OPEN_PROBES = env_int("ATP_BREAKER_HALF_OPEN_PROBES", 1, minimum=1)
ATP_BREAKER_SYNC_SECONDS = env_float("ATP_BREAKER_SYNC_SECONDS", 1.0, minimum=0.0)

# Outgoing e-mail (budget alert notifiers). Without EMAIL_HOST, mail goes to the log
# (the console backend) so an unconfigured ATP never tries to reach a mail server.
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_TIMEOUT = 10
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend",
)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "atp@localhost")

# Rate limits and budgets (apps.costs.admission). A reservation (concurrency slot, budget
# hold) of a request that was never settled, because its process died, expires after
# RESERVATION_SECONDS. Settlements are sent every SETTLE_SECONDS in batches of at most
# SETTLE_BATCH. When Redis cannot be reached: "open" admits with this process's own
# counters (a local approximation), "closed" refuses with 503. The reservation assumes DEFAULT_MAX_OUTPUT
# output tokens for a request that sets no max_tokens.
ATP_LIMITS_RESERVATION_SECONDS = env_float("ATP_LIMITS_RESERVATION_SECONDS", 900.0, minimum=1.0)
ATP_LIMITS_SETTLE_BATCH = env_int("ATP_LIMITS_SETTLE_BATCH", 256, minimum=1)
ATP_LIMITS_SETTLE_SECONDS = env_float("ATP_LIMITS_SETTLE_SECONDS", 0.02, minimum=0.0)
ATP_RATE_LIMITS_ON_REDIS_ERROR = env_str("ATP_RATE_LIMITS_ON_REDIS_ERROR", "open")
ATP_BUDGETS_ON_REDIS_ERROR = env_str("ATP_BUDGETS_ON_REDIS_ERROR", "open")
for _name in ("ATP_RATE_LIMITS_ON_REDIS_ERROR", "ATP_BUDGETS_ON_REDIS_ERROR"):
    if globals()[_name] not in ("open", "closed"):
        raise ImproperlyConfigured(f"{_name} must be 'open' or 'closed'.")
# How long a rotated API key keeps working beside its replacement, unless the rotation
# says otherwise (0: the old key stops at once).
ATP_KEY_ROTATION_GRACE_SECONDS = env_int("ATP_KEY_ROTATION_GRACE_SECONDS", 0, minimum=0)
ATP_DEFAULT_MAX_OUTPUT_TOKENS = env_int("ATP_DEFAULT_MAX_OUTPUT_TOKENS", 4096, minimum=1)
# Overload control (apps.costs.overload): an in-flight window per process between MIN and
# MAX /v1 requests (MAX 0: no control), shrunk when the event loop runs more than
# TARGET_LAG_MS late, grown by INCREASE while it is used, checked every TICK_MS; lower
# service tiers are shed first.
ATP_OVERLOAD_MAX_IN_FLIGHT = env_int("ATP_OVERLOAD_MAX_IN_FLIGHT", 2000, minimum=0)
ATP_OVERLOAD_MIN_IN_FLIGHT = env_int("ATP_OVERLOAD_MIN_IN_FLIGHT", 128, minimum=1)
ATP_OVERLOAD_TARGET_LAG_MS = env_float("ATP_OVERLOAD_TARGET_LAG_MS", 25.0, minimum=1.0)
ATP_OVERLOAD_TICK_MS = env_float("ATP_OVERLOAD_TICK_MS", 100.0, minimum=10.0)
ATP_OVERLOAD_INCREASE = env_int("ATP_OVERLOAD_INCREASE", 32, minimum=1)

# Provider health checks: probe timeout (seconds), latency above which a provider that
# answered is "degraded" (ms), and how many checks are kept per provider.
ATP_HEALTH_TIMEOUT_SECONDS = env_float("ATP_HEALTH_TIMEOUT_SECONDS", 10.0, minimum=0.1)
ATP_HEALTH_DEGRADED_MS = env_int("ATP_HEALTH_DEGRADED_MS", 3000, minimum=1)
ATP_HEALTH_HISTORY = env_int("ATP_HEALTH_HISTORY", 100, minimum=1)

# The pricing catalog (apps.costs.catalog, docs/pricing-catalog.md). The daily refresh reads
# published prices from ATP_PRICE_CATALOG: a JSON file's path or an http(s) URL (the only
# network fetch, made only when set); empty: the catalog bundled with ATP. A change of any
# rate by more than ALERT_PERCENT is flagged (audit price.change_flagged) and left for an
# admin, unless AUTO_APPLY_FLAGGED. A deployment's price not confirmed by the catalog or an
# admin for STALE_DAYS is warned of (audit price.stale, once per deployment per period).
ATP_PRICE_CATALOG = env_str("ATP_PRICE_CATALOG", "").strip()
if "://" in ATP_PRICE_CATALOG and not ATP_PRICE_CATALOG.startswith(("http://", "https://")):
    raise ImproperlyConfigured("ATP_PRICE_CATALOG must be a file path or an http(s) URL.")
ATP_PRICE_CHANGE_ALERT_PERCENT = env_float("ATP_PRICE_CHANGE_ALERT_PERCENT", 20.0, minimum=0.0)
ATP_PRICE_CATALOG_AUTO_APPLY_FLAGGED = env_bool("ATP_PRICE_CATALOG_AUTO_APPLY_FLAGGED", False)
ATP_PRICE_STALE_DAYS = env_int("ATP_PRICE_STALE_DAYS", 90, minimum=1)

# --- data plane bounds and errors (issue 10) -------------------------------------------
# Largest non-streamed upstream response body read (bytes, after decompression); a larger
# one is abandoned and answered with a 502 `upstream_body_too_large`.
ATP_UPSTREAM_MAX_BODY_BYTES = env_int("ATP_UPSTREAM_MAX_BODY_BYTES", 64 << 20, minimum=1024)
# The semantic cache's vector indexes in one process, across every tenant and route: most
# bytes kept; the least recently used scopes are dropped first (docs/cache.md).
ATP_CACHE_SEMANTIC_MAX_BYTES = env_int("ATP_CACHE_SEMANTIC_MAX_BYTES", 256 << 20, minimum=4096)
# Retry-After (seconds) sent with a 429 or 503 when the upstream gave none, and the most
# ATP passes on when it gave one (docs/errors.md).
ATP_RETRY_AFTER_DEFAULT_SECONDS = env_int("ATP_RETRY_AFTER_DEFAULT_SECONDS", 1, minimum=1)
ATP_RETRY_AFTER_MAX_SECONDS = env_int("ATP_RETRY_AFTER_MAX_SECONDS", 60, minimum=1)

# --- audit chain heads (issue 10) ---
# Ed25519 key that signs the chain's head (sequence, hash), so a truncated chain is caught:
# a PEM (PKCS#8) Ed25519 private key, or a random secret of 32+ characters from which the
# key's seed is derived (HKDF-SHA256). `manage.py audit_public_key` prints its public key.
ATP_AUDIT_HEAD_KEY = env_secret("ATP_AUDIT_HEAD_KEY") or _embedded_secret("audit_head_key")
# Signed heads from the nightly job, shutdowns and restores are appended here (and kept in
# the database); the file lives in ATP_DATA_DIR, outside what the database role can change.
ATP_AUDIT_HEAD_FILE = DATA_DIR / "audit_heads.jsonl"
# Optional directory that also receives each of those heads as a new file (never
# rewritten): point it at WORM storage or another volume the auditors can read.
ATP_AUDIT_HEAD_SINK = env_str("ATP_AUDIT_HEAD_SINK")
if ATP_AUDIT_HEAD_SINK and not Path(ATP_AUDIT_HEAD_SINK).is_dir():
    raise ImproperlyConfigured(
        f"ATP_AUDIT_HEAD_SINK must name an existing directory, not {ATP_AUDIT_HEAD_SINK!r}."
    )
# Seconds between periodic seals of the chain's end (only when it moved): events appended
# after the latest seal are the only ones that could be cut off the end without a trace.
ATP_AUDIT_SEAL_SECONDS = env_int("ATP_AUDIT_SEAL_SECONDS", 300, minimum=10)

# --- secrets, production settings, realtime limits (issue 10) -----------------------------
# Open /v1/realtime WebSockets one API key may hold at once (counted across processes
# through Redis when configured); the next is refused with close code 4429.
ATP_REALTIME_MAX_SOCKETS_PER_KEY = env_int("ATP_REALTIME_MAX_SOCKETS_PER_KEY", 16, minimum=1)
# Seconds a /v1/realtime socket may stay open without authenticating (then closed, 4401).
ATP_REALTIME_AUTH_TIMEOUT_SECONDS = env_float(
    "ATP_REALTIME_AUTH_TIMEOUT_SECONDS", 10.0, minimum=0.1
)

# Served to browsers over HTTPS (directly or through a TLS-terminating proxy): session and
# CSRF cookies are sent only over HTTPS, and responses to HTTPS requests carry HSTS.
ATP_HTTPS = env_bool("ATP_HTTPS", False)
# HSTS max-age in seconds when ATP_HTTPS is on (0 sends no HSTS header).
ATP_HSTS_SECONDS = env_int("ATP_HSTS_SECONDS", 31_536_000, minimum=0)
# Behind a proxy that terminates TLS: treat requests whose X-Forwarded-Proto is https as
# secure. Only behind a proxy that sets that header and drops any a client sent.
ATP_TRUST_X_FORWARDED_PROTO = env_bool("ATP_TRUST_X_FORWARDED_PROTO", False)
SESSION_COOKIE_SECURE = ATP_HTTPS
CSRF_COOKIE_SECURE = ATP_HTTPS
# Pages put the CSRF token in the markup; no script needs to read the cookie.
CSRF_COOKIE_HTTPONLY = True
SECURE_HSTS_SECONDS = ATP_HSTS_SECONDS if ATP_HTTPS else 0
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if ATP_TRUST_X_FORWARDED_PROTO else None
)
# Messages (a newly created key or token is shown once through one) stay server-side in
# the session instead of travelling in a cookie.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
# Applies LOGGING below, then masks query strings in the ASGI servers' request lines
# (uvicorn, daphne's runserver), where a key sent in a URL would otherwise be kept.
LOGGING_CONFIG = "atp_site.lib.logs.configure"
# The OpenAPI schema and its documentation pages are for signed-in users and token holders
# (401 otherwise), and Swagger UI and Redoc load from this server's static files (the
# drf-spectacular-sidecar package), never a CDN: closed networks have none.
SPECTACULAR_SETTINGS.update(
    {
        "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
        "SWAGGER_UI_DIST": "SIDECAR",
        "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
        # No validator badge: it sends the schema's URL to swagger.io.
        "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
        "REDOC_DIST": "SIDECAR",
        # Fields of the same name with different choices get a name of their own.
        "ENUM_NAME_OVERRIDES": {
            "CostScopeEnum": "apps.costs.models.Scope",
            "NotifierKindEnum": "apps.costs.models.Notifier.Kind",
            "ProviderKindEnum": "apps.providers.models.Provider.Kind",
            "BudgetScopeEnum": [("tenant", "Tenant"), ("project", "Project"), ("key", "API key")],
        },
    }
)

# --- permissions, provider credentials, retention floor (issue 10) ---------------------
# Extra glob patterns (comma-separated) of environment variables a provider's `api_key_env`
# may name, besides *_API_KEY and ATP_PROVIDER_*. The server's own secrets (ATP_*,
# DATABASE_URL, REDIS_URL, ...) stay out of reach whatever a pattern matches.
ATP_PROVIDER_ENV_ALLOW = env_list("ATP_PROVIDER_ENV_ALLOW")
# Audit events are kept at least this many days whatever a retention policy or an event's
# own retention says, and no policy on an audit classification may ask for less.
ATP_AUDIT_MIN_RETENTION_DAYS = env_int("ATP_AUDIT_MIN_RETENTION_DAYS", 365, minimum=1)

# --- records are never lost (issue 10) ------------------------------------------------
# Rows one write-behind queue may hold in memory; beyond it they go to the spill file in
# ATP_DATA_DIR rather than growing memory (about 20 s of a busy core's traffic).
ATP_WRITE_BEHIND_MAX_ROWS = env_int("ATP_WRITE_BEHIND_MAX_ROWS", 50_000, minimum=100)
# Bytes of spilled rows (waiting for an unreachable database) at which new /v1 requests are
# refused with a retryable 503; 1 GiB holds minutes of a busy core's records.
ATP_SPILL_MAX_BYTES = env_int("ATP_SPILL_MAX_BYTES", 1 << 30, minimum=1)
# What happens at ATP_SPILL_MAX_BYTES: reject (503 with Retry-After: nothing is served that
# cannot be recorded) or proceed (serve unrecorded; dropped rows counted in /metrics).
ATP_SPILL_FULL = env_str("ATP_SPILL_FULL", "reject")
if ATP_SPILL_FULL not in ("reject", "proceed"):
    raise ImproperlyConfigured("ATP_SPILL_FULL must be reject or proceed.")

# --- OpenAPI (issue 10) ---------------------------------------------------------------
# The schema documents every error an operation really returns (atp_site.lib.openapi),
# and request bodies get components of their own (`TenantRequest`, ...) so read-only
# fields are not asked of clients and write-only ones are not promised in responses.
REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"] = "atp_site.lib.openapi.AutoSchema"
# Bodies with a string the database cannot store (a NUL, a lone surrogate), at any depth,
# get a 400 naming the field; DRF's search filter refuses a bad term naming `search`.
REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"] = [
    "atp_site.lib.api_input.JSONParser",
    "atp_site.lib.api_input.FormParser",
    "atp_site.lib.api_input.MultiPartParser",
]
REST_FRAMEWORK["DEFAULT_FILTER_BACKENDS"] = [
    "django_filters.rest_framework.DjangoFilterBackend",
    "rest_framework.filters.OrderingFilter",
    "atp_site.lib.api_input.SearchFilter",
]
SPECTACULAR_SETTINGS.update(
    {
        "DESCRIPTION": (
            "Tenants, API keys, admin tokens, providers, model deployments, routes, the "
            "audit log, retention policies and data-subject requests.\n\n"
            "Authenticate with a personal admin token (`Authorization: Bearer atpadm_...`, "
            "from `manage.py atp_admin_token` or `POST /api/v1/admin-tokens/`) or a signed-in "
            "session (unsafe methods then also need the `X-CSRFToken` header).\n\n"
            'Errors: 400 with the invalid fields and their messages (or `{"detail"}` for a '
            "body that cannot be parsed); 401 without valid credentials; 403 without the "
            "permission; 404 for an object that does not exist or is outside the caller's "
            'tenants; 409 `{"detail", "code": "conflict", "field"}` when a name or '
            "slug is already in use. Prices are exact decimal strings."
        ),
        "COMPONENT_SPLIT_REQUEST": True,
    }
)

# --- logging --------------------------------------------------------------------------
# ATP_LOG_FORMAT: `plain` (a line of text, the default) or `json` (one object per line with
# the request's ids: docs/production.md). ATP_LOG_REQUESTS: one record per finished /v1
# request on the `atp.requests` logger (on by default with the JSON format).
ATP_LOG_FORMAT = env_str("ATP_LOG_FORMAT", "plain").strip().lower() or "plain"
if ATP_LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"ATP_LOG_FORMAT must be 'plain' or 'json', not {ATP_LOG_FORMAT!r}.")
ATP_LOG_REQUESTS = env_bool("ATP_LOG_REQUESTS", ATP_LOG_FORMAT == "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request": {"()": "atp_site.lib.logs.RequestFields"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "atp_site.lib.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": ATP_LOG_FORMAT,
            "filters": ["request"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("ATP_LOG_LEVEL", "INFO")},
    "loggers": {"django.request": {"level": "ERROR"}},
}

# === sign-in: local accounts, TOTP, OpenID Connect, sessions, CSP (issue 11) ===============
# Everything about signing in lives in this block and in atp_site/auth (docs/sign-in.md).
from atp_site.auth.config import oidc_from_env  # noqa: E402

INSTALLED_APPS += [
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "csp",
    "atp_site.auth",
]
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
    "atp_site.auth.csp.PolicyMiddleware",
)
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
    "django_otp.middleware.OTPMiddleware",
)
# Session lifetimes and the superusers' second factor; it leaves a message when it ends a
# session, so it comes after the message middleware.
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.contrib.messages.middleware.MessageMiddleware") + 1,
    "atp_site.auth.middleware.SignInPolicyMiddleware",
)
# Last: turns a sign-in refused for too many failures into the sign-in page's lockout message.
MIDDLEWARE.append("axes.middleware.AxesMiddleware")

LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

# Throttling (django-axes): after this many failed sign-ins from one address for one
# username, that pair is locked out for this many minutes. Wrong second-factor codes count.
ATP_LOGIN_FAILURE_LIMIT = env_int("ATP_LOGIN_FAILURE_LIMIT", 5, minimum=1)
ATP_LOGIN_LOCKOUT_MINUTES = env_int("ATP_LOGIN_LOCKOUT_MINUTES", 15, minimum=1)
AXES_FAILURE_LIMIT = ATP_LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = ATP_LOGIN_LOCKOUT_MINUTES / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Attempts refused during a lockout do not extend it.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "atp_site.auth.views.lockout_response"
# Sign-ins are in the audit log already; axes keeps only the failure counters.
AXES_DISABLE_ACCESS_LOG = True
AXES_VERBOSE = False
LOGGING["loggers"]["axes"] = {"level": "WARNING"}
AUTHENTICATION_BACKENDS = ["atp_site.auth.backends.ThrottleBackend", *AUTHENTICATION_BACKENDS]

# Second factor (django-otp, TOTP): with this on, a superuser signing in with a password
# must enroll an authenticator app before anything else.
ATP_OTP_REQUIRED_FOR_SUPERUSERS = env_bool("ATP_OTP_REQUIRED_FOR_SUPERUSERS", False)
OTP_TOTP_ISSUER = env_str("ATP_OTP_ISSUER", "ATP")

# Sessions end ATP_SESSION_SECONDS after sign-in whatever happens (absolute), and earlier
# after ATP_SESSION_IDLE_SECONDS without a request (idle).
ATP_SESSION_SECONDS = env_int("ATP_SESSION_SECONDS", 8 * 3600, minimum=60)
ATP_SESSION_IDLE_SECONDS = env_int("ATP_SESSION_IDLE_SECONDS", 3600, minimum=60)
SESSION_COOKIE_AGE = ATP_SESSION_SECONDS
SESSION_COOKIE_SAMESITE = "Lax"  # the provider's redirect back must carry the cookie

# OpenID Connect (mozilla-django-oidc), configured by ATP_OIDC_* (docs/sign-in.md); None
# when ATP_OIDC_ISSUER is unset. Endpoints come from the issuer's discovery document,
# fetched at start-up (atp_site.auth.discovery).
ATP_OIDC = oidc_from_env()
if ATP_OIDC is not None:
    AUTHENTICATION_BACKENDS.append("atp_site.auth.oidc.OidcBackend")
    OIDC_RP_SCOPES = ATP_OIDC.scopes
    OIDC_USE_PKCE = True
    OIDC_TIMEOUT = ATP_OIDC.timeout
    OIDC_AUTHENTICATION_CALLBACK_URL = "auth:oidc-callback"
    LOGIN_REDIRECT_URL_FAILURE = "/login/"

# Content-Security-Policy (django-csp): no inline script or style anywhere ATP renders;
# third-party pages that need more get it per view (atp_site.auth.csp).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],  # plus ws:/wss: of the request's host, per request
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        # Signing out of single sign-on is a form whose answer redirects to the provider.
        "form-action": ["'self'", *([ATP_OIDC.origin] if ATP_OIDC else [])],
    }
}
# === end of sign-in ===========================================================================

# === backups (apps.audit.backup, docs/backups.md) =============================================
# Where `manage.py atp_backup` and the daily job write archives; rotation keeps the newest
# backup of each of the last ATP_BACKUP_KEEP_DAILY days and ATP_BACKUP_KEEP_WEEKLY ISO weeks
# that have one. With ATP_BACKUP_ENCRYPTION_KEY (or _FILE), a passphrase of 16+ characters,
# archives are encrypted (AES-256-GCM, scrypt) and restores read them with it.
ATP_BACKUP_DIR = Path(env_str("ATP_BACKUP_DIR", str(DATA_DIR / "backups")))
ATP_BACKUP_KEEP_DAILY = env_int("ATP_BACKUP_KEEP_DAILY", 7, minimum=1)
ATP_BACKUP_KEEP_WEEKLY = env_int("ATP_BACKUP_KEEP_WEEKLY", 4, minimum=0)
ATP_BACKUP_ENCRYPTION_KEY = env_secret("ATP_BACKUP_ENCRYPTION_KEY")
if ATP_BACKUP_ENCRYPTION_KEY and len(ATP_BACKUP_ENCRYPTION_KEY) < 16:
    raise ImproperlyConfigured("ATP_BACKUP_ENCRYPTION_KEY must be at least 16 characters long.")
# === end of backups ===========================================================================

# === periodic jobs (atp_site.duties, apps.audit.scheduled, docs/jobs.md) ======================
# Days the runs of periodic jobs (started, finished, failed, skipped) are kept for the console's
# "Scheduled jobs" page and GET /api/v1/jobs/scheduled/; the hourly audit.jobs_expire deletes
# older ones.
ATP_SCHEDULED_RUN_DAYS = env_int("ATP_SCHEDULED_RUN_DAYS", 14, minimum=1)
# The queue web processes and beat send tasks to and workers consume: deployments (or test
# runs) sharing one Redis database keep apart by giving each its own.
CELERY_TASK_DEFAULT_QUEUE = env_str("ATP_CELERY_QUEUE", "celery")
# === end of periodic jobs =====================================================================
