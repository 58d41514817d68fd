"""cot settings, read from the environment (django-environ).

Every value has an embedded default that lets ``make run`` start a working system on
one machine. ``COT_ENV=production`` turns the defaults that are only safe on a laptop
into start-up errors (see ``cot.production``).
"""

from datetime import timedelta
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import environ

from cot.database.scope import ScopedCursor
from cot.production import enforce_production_settings

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

COT_ENV = env.str("COT_ENV", default="development")
PRODUCTION = COT_ENV == "production"
DEVELOPMENT_SECRET_KEY = "cot-development-only-secret-key-not-for-production-use"  # noqa: S105 (refused in production)

DEBUG = env.bool("DEBUG", default=not PRODUCTION)
SECRET_KEY = env.str("SECRET_KEY", default=DEVELOPMENT_SECRET_KEY)
# Keys for keyed hashes of API tokens and the audit chain. Separate from SECRET_KEY so
# rotating session signing does not invalidate every token or the audit history; the
# defaults derived from it are for development only (production refuses them).
TOKEN_HASH_KEY = env.str("COT_TOKEN_HASH_KEY", default=SECRET_KEY + ":tokens")
AUDIT_CHAIN_KEY = env.str("COT_AUDIT_CHAIN_KEY", default=SECRET_KEY + ":audit")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[] if PRODUCTION else ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Addresses of reverse proxies whose X-Forwarded-For we believe. Empty: never believe it.
TRUSTED_PROXIES = env.list("COT_TRUSTED_PROXIES", default=[])
SITE_URL = env.str("COT_SITE_URL", default="http://127.0.0.1:8000")
# Mounts /bench/noop, the no-database reference of `make bench` (scripts/bench.sh sets it).
BENCH_ENDPOINTS = env.bool("COT_BENCH_ENDPOINTS", default=False)

INSTALLED_APPS = [
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
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    # Passkeys as a second factor (tenants/passkeys.py).
    "django_otp_webauthn",
    "auditlog",
    "axes",
    # htmx (shipped with the package, served by whitenoise) for the cockpit's live pages.
    "django_htmx",
    # migrate and flush as the schema's owner role, the application's privileges after migrate
    "cot.database",
    "tenants",
    "devices",
    "firmware",
    "audit",
    "notifications",
    # Wiring above every app (the demo data of `make run`).
    "cot.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # No tenant at the start of a request, none left after it (row-level security's scope).
    "cot.database.middleware.RequestScopeMiddleware",
    # Refuses oversize request bodies (413) before anything reads them, on every route.
    "cot.body_limits.RequestBodyLimitMiddleware",
    # Answers /api/device/v1/ itself with the little a device request needs (see its docstring).
    "devices.device_api.middleware.DeviceAPIMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    # request.htmx: the cockpit's live fragments answer htmx's requests differently.
    "django_htmx.middleware.HtmxMiddleware",
    "audit.middleware.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "tenants.middleware.TenantSessionMiddleware",
    "tenants.support_middleware.SupportGrantMiddleware",
    # Tenants closed for maintenance: the notice (503) and nothing else, support engineers included.
    "tenants.middleware.MaintenanceMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "cot.urls"
WSGI_APPLICATION = "cot.wsgi.application"

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

# The application's role (no table of its own, no superuser; see cot/database/roles.py)
# and the owner's, which runs migrations. A deployment that names no owner runs them as
# the application, as before the split; production refuses that.
DATABASES = {
    "default": env.db("DATABASE_URL", default="postgres://cot_app@127.0.0.1:54320/cot"),
    "telemetry": env.db("TELEMETRY_DATABASE_URL", default="postgres://cot_app@127.0.0.1:54320/cot_telemetry"),
}
MIGRATION_DATABASES = {
    "default": env.db(
        "MIGRATION_DATABASE_URL", default=env.str("DATABASE_URL", default="postgres://cot_owner@127.0.0.1:54320/cot")
    ),
    "telemetry": env.db(
        "TELEMETRY_MIGRATION_DATABASE_URL",
        default=env.str("TELEMETRY_DATABASE_URL", default="postgres://cot_owner@127.0.0.1:54320/cot_telemetry"),
    ),
}
# Health checks would cost a round trip per database per request; without them the first
# request after a database restart fails once and its connection is replaced.
DB_HEALTH_CHECKS = env.bool("COT_DB_HEALTH_CHECKS", default=False)
for _db in DATABASES.values():
    # Every statement carries the tenant it may see (row-level security, cot/database/scope.py).
    _db.setdefault("OPTIONS", {})["cursor_factory"] = ScopedCursor
    _db.setdefault("CONN_MAX_AGE", 60)
    _db.setdefault("CONN_HEALTH_CHECKS", DB_HEALTH_CHECKS)
# Payload data trades a crash window (the last ~0.6 s of acknowledged measurements may be
# lost if PostgreSQL itself crashes; nothing is ever corrupted) for ingest speed. Customer,
# user and audit data in "default" always commit synchronously.
TELEMETRY_SYNCHRONOUS_COMMIT = env.str("COT_TELEMETRY_SYNCHRONOUS_COMMIT", default="off")
DATABASES["telemetry"].setdefault("OPTIONS", {})
DATABASES["telemetry"]["OPTIONS"].setdefault("options", f"-c synchronous_commit={TELEMETRY_SYNCHRONOUS_COMMIT}")
DATABASE_ROUTERS = ["cot.db_routers.TelemetryRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:63790/0")
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL},
}

AUTH_USER_MODEL = "tenants.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "tenants.auth_backends.TenantEmailBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "cockpit:login"

SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_HTTPONLY = True
# Messages can carry a secret shown once (a new token's value): keep them server-side.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
SESSION_COOKIE_SAMESITE = "Lax"
# The hard upper bound; each tenant's policy sets a shorter idle timeout.
SESSION_COOKIE_AGE = 12 * 3600

# Login throttling (django-axes): per account *and* source address together, so a
# stranger elsewhere cannot lock a user out; RATE_LIMITS["login"] bounds every address.
AXES_FAILURE_LIMIT = env.int("COT_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("COT_LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_FORM_FIELD = "username"
AXES_USERNAME_CALLABLE = "tenants.auth_backends.lockout_username"
AXES_CLIENT_IP_CALLABLE = "audit.request_meta.client_ip"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "cot.cockpit.site.lockout_response"
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"

# Guardian: object permissions only through our direct foreign-key tables; no anonymous user.
ANONYMOUS_USER_NAME = None
GUARDIAN_RAISE_403 = False
# guardian.W001 asks for its authentication backend; we deliberately leave it out, since
# object rights are read by tenants.access through guardian's tables, never by has_perm().
# otp_webauthn.E010 and E030 ask for a fixed relying party and origins; unset, ours are the
# cockpit's own host (tenants.passkeys.CockpitWebAuthnHelper), so they are not missing.
SILENCED_SYSTEM_CHECKS = ["guardian.W001", "otp_webauthn.E010", "otp_webauthn.E030"]

OTP_TOTP_ISSUER = env.str("COT_OTP_ISSUER", default="cot")
OTP_TOTP_THROTTLE_FACTOR = 1
# Passkeys (django-otp-webauthn) are a second factor only: the password always comes first.
OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN = False
# A refused passkey is the client's failure (audited as auth.login_failed), not a server error to log.
OTP_WEBAUTHN_EXCEPTION_LOGGER_NAME = ""
OTP_WEBAUTHN_HELPER_CLASS = "tenants.passkeys.CockpitWebAuthnHelper"
OTP_WEBAUTHN_RP_NAME = env.str("COT_WEBAUTHN_RP_NAME", default="cot")
# Empty: the cockpit's host (tenants.passkeys.CockpitWebAuthnHelper). Changing the RP ID
# later makes every enrolled passkey useless.
OTP_WEBAUTHN_RP_ID = env.str("COT_WEBAUTHN_RP_ID", default="")
OTP_WEBAUTHN_ALLOWED_ORIGINS = env.list("COT_WEBAUTHN_ORIGINS", default=[])

AUDITLOG_LOGENTRY_MODEL = "audit.AuditEntry"
AUDITLOG_INCLUDE_ALL_MODELS = False
AUDITLOG_DISABLE_REMOTE_ADDR = True
# Signed checkpoints of each audit chain's tip (audit.checkpoints). Keep the directory on
# storage that the database host and database account cannot write.
AUDIT_CHECKPOINT_DIR = Path(env.str("COT_AUDIT_CHECKPOINT_DIR", default=str(BASE_DIR / "var" / "audit-checkpoints")))
AUDIT_CHECKPOINT_SECONDS = env.float("COT_AUDIT_CHECKPOINT_SECONDS", default=300.0)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenants.api.authentication.ApiTokenAuthentication",
        "tenants.api.authentication.VerifiedSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["tenants.api.permissions.TenantAccessPermission"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["cot.api.parsers.StrictJSONParser"],
    "DEFAULT_PAGINATION_CLASS": "cot.api.pagination.IdCursorPagination",
    "DEFAULT_FILTER_BACKENDS": ["cot.api.filters.ScopedFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": ["cot.api.throttling.ApiRateThrottle"],
    "EXCEPTION_HANDLER": "cot.api.errors.exception_handler",
    "PAGE_SIZE": 50,
    "UNAUTHENTICATED_USER": None,
    # JSON only: no ?format= switch (it answered 404 for unknown formats, undocumented).
    "URL_FORMAT_OVERRIDE": None,
}
API_MAX_PAGE_SIZE = 500
# Token-bucket rate limits per scope and window; each tenant may override them
# (Tenant.rate_limits). "device" and "tenant_devices" guard the device API, "token" and
# "tenant_api" the user API.
RATE_LIMITS = {
    "device": {
        "second": env.str("COT_RATE_DEVICE_SECOND", default="20/s"),
        "minute": env.str("COT_RATE_DEVICE_MINUTE", default="600/min"),
    },
    "tenant_devices": {
        "second": env.str("COT_RATE_TENANT_DEVICES_SECOND", default="2000/s"),
        "minute": env.str("COT_RATE_TENANT_DEVICES_MINUTE", default="60000/min"),
    },
    "token": {
        "second": env.str("COT_RATE_TOKEN_SECOND", default="20/s"),
        "minute": env.str("COT_RATE_TOKEN_MINUTE", default="600/min"),
    },
    "tenant_api": {
        "second": env.str("COT_RATE_TENANT_API_SECOND", default="100/s"),
        "minute": env.str("COT_RATE_TENANT_API_MINUTE", default="3000/min"),
    },
    # Password logins per source address, whichever accounts they name.
    "login": {"minute": env.str("COT_RATE_LOGIN_MINUTE", default="30/min")},
    # Device registration, per source address: every call, and wrong registration tokens.
    "registration": {"minute": env.str("COT_RATE_REGISTRATION_MINUTE", default="30/min")},
    "registration_guess_address": {"window": env.str("COT_RATE_REGISTRATION_GUESS_ADDRESS", default="5/15min")},
    # Wrong registration tokens per tenant and external id (whether it is expected or not).
    "registration_guess": {"window": env.str("COT_RATE_REGISTRATION_GUESS", default="10/hour")},
}
# The scopes a tenant's own rate_limits may override (the others are the platform's).
TENANT_RATE_SCOPES = ("device", "tenant_devices", "token", "tenant_api")
# Every request body (cot.body_limits refuses bigger ones with 413 before reading them);
# multipart uploads to the cockpit (CSV files) have their own, larger limit.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("COT_MAX_REQUEST_BYTES", default=1024 * 1024)
COT_MAX_UPLOAD_BYTES = env.int("COT_MAX_UPLOAD_BYTES", default=16 * 1024 * 1024)
# Firmware images: the platform's ceiling for one image (views marked with this setting in
# cot.body_limits, and the per-part limit of firmware.uploads); a tenant's limit may be lower.
COT_MAX_FIRMWARE_BYTES = env.int("COT_MAX_FIRMWARE_BYTES", default=512 * 1024 * 1024)
API_TOKEN_PREFIX = "cot_pat_"  # noqa: S105 (public prefix for secret scanners)
API_TOKEN_DEFAULT_DAYS = 90
DEVICE_CREDENTIAL_PREFIX = "cot_dev_"
DEVICE_REGISTRATION_TOKEN_PREFIX = "cot_reg_"  # noqa: S105 (public prefix for secret scanners)
DEVICE_MAX_BATCH = env.int("COT_DEVICE_MAX_BATCH", default=5000)
DEVICE_MAX_CLOCK_SKEW_SECONDS = env.int("COT_DEVICE_MAX_CLOCK_SKEW_SECONDS", default=300)
# How long a device polling /api/device/v1/firmware/next with nothing to do is told to wait (jittered by ±20 %).
DEVICE_FIRMWARE_POLL_SECONDS = env.int("COT_DEVICE_FIRMWARE_POLL_SECONDS", default=3600)
# Header in which the TLS-terminating proxy passes the client certificate it verified (URL-encoded
# PEM, nginx's $ssl_client_escaped_cert; see deploy/nginx.conf). Read only from COT_TRUSTED_PROXIES;
# the app hashes the certificate itself, so a bare fingerprint header is never believed.
DEVICE_CERT_HEADER = "HTTP_X_CLIENT_CERT"
# How stale last_seen may get before a request writes it again (saves a write per request).
DEVICE_LAST_SEEN_RESOLUTION_SECONDS = 30
# The cockpit's home page: how long one caller's numbers are reused, and how often open
# pages (dashboard, device list, device page) ask for fresh ones while they are visible.
COCKPIT_DASHBOARD_CACHE_SECONDS = env.int("COT_DASHBOARD_CACHE_SECONDS", default=15)
COCKPIT_REFRESH_SECONDS = env.int("COT_COCKPIT_REFRESH_SECONDS", default=30)
# The device map draws a bundled world outline; tiles come from this URL template (e.g. an
# OpenStreetMap tile server of your own) only when one is set: nothing is fetched from the internet by default.
COCKPIT_MAP_TILE_URL = env.str("COT_MAP_TILE_URL", default="")
COCKPIT_MAP_TILE_ATTRIBUTION = env.str("COT_MAP_TILE_ATTRIBUTION", default="")
COCKPIT_MAP_MAX_MARKERS = env.int("COT_MAP_MAX_MARKERS", default=500)

SPECTACULAR_SETTINGS = {
    "TITLE": "cot API",
    "DESCRIPTION": "Multi-tenant IoT device management. Authenticate with `Authorization: Bearer <token>`.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "cot.api.schema.document_errors"],
}

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# How often the beat job looks for rows that tie tenants together (tenants/isolation.py).
ISOLATION_CHECK_SECONDS = env.float("COT_ISOLATION_CHECK_SECONDS", default=3600.0)
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "clear-expired-sessions": {"task": "tenants.tasks.clear_expired_sessions", "schedule": 3600.0},
    "expire-support-grants": {"task": "tenants.tasks.expire_support_grants", "schedule": 30.0},
    "enforce-payload-retention": {"task": "devices.tasks.enforce_payload_retention", "schedule": 3600.0},
    "write-audit-checkpoint": {"task": "audit.tasks.write_audit_checkpoint", "schedule": AUDIT_CHECKPOINT_SECONDS},
    "check-isolation": {"task": "tenants.tasks.check_isolation", "schedule": ISOLATION_CHECK_SECONDS},
    # The rollout engine (docs/rollouts.md, "Operations"): each is idempotent and safe on many workers.
    # A tick that waited longer than its interval in the queue is dropped (the next one does its work).
    "evaluate-rollouts": {"task": "firmware.tasks.evaluate_rollouts", "schedule": 5.0, "options": {"expires": 5.0}},
    "sweep-rollout-timeouts": {
        "task": "firmware.tasks.sweep_rollout_timeouts",
        "schedule": 30.0,
        "options": {"expires": 30.0},
    },
    "reconcile-rollout-counters": {"task": "firmware.tasks.reconcile_rollout_counters", "schedule": 300.0},
    "rollout-watchdog": {"task": "firmware.tasks.rollout_watchdog", "schedule": 60.0},
    "retry-due-deliveries": {"task": "notifications.tasks.retry_due_deliveries", "schedule": 60.0},
}
# Notifications (docs/notifications.md): webhook attempts in all, each one's timeout, and the
# networks (CIDR) a webhook may reach although private or loopback (none by default: SSRF).
COT_WEBHOOK_ATTEMPTS = env.int("COT_WEBHOOK_ATTEMPTS", default=6)
COT_WEBHOOK_TIMEOUT_SECONDS = env.float("COT_WEBHOOK_TIMEOUT_SECONDS", default=5.0)
COT_WEBHOOK_ALLOWED_NETWORKS = env.list("COT_WEBHOOK_ALLOWED_NETWORKS", default=[])
# A rollout still planning this long after its job was queued, with no worker holding its
# planning lock, has lost its worker: the watchdog queues the job again.
COT_ROLLOUT_PLANNING_STALE_SECONDS = env.int("COT_ROLLOUT_PLANNING_STALE_SECONDS", default=300)
# Targets the timeout sweep moves per transaction.
COT_ROLLOUT_SWEEP_BATCH = env.int("COT_ROLLOUT_SWEEP_BATCH", default=1000)

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="cot@localhost")
# Seconds an SMTP server may take per operation; a hung relay must not hold a worker for ever.
EMAIL_TIMEOUT = env.int("COT_EMAIL_TIMEOUT_SECONDS", default=10)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
STATICFILES_DIRS = [
    BASE_DIR / "static",
    # Leaflet's scripts and styles for the cockpit's device map, from the django-leaflet
    # package, under static/leaflet/. Only its assets: as an installed app its admin module
    # would import GeoDjango, which needs GDAL, and cot stores no geometries.
    ("leaflet", Path(find_spec("leaflet").origin).parent / "static" / "leaflet"),  # type: ignore[arg-type, union-attr]
]
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# Firmware images, content-addressed (firmware.storage). Never served by URL: the app
# streams them after its access checks (the file system storage refuses url()).
# COT_FIRMWARE_STORAGE=s3 uses an S3-compatible store instead (needs django-storages[s3],
# installed separately; see docs/operations.md#firmware-storage).
FIRMWARE_STORAGE_KIND = env.str("COT_FIRMWARE_STORAGE", default="filesystem")
if FIRMWARE_STORAGE_KIND == "s3":
    STORAGES["firmware"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env.str("COT_FIRMWARE_S3_BUCKET"),
            "endpoint_url": env.str("COT_FIRMWARE_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("COT_FIRMWARE_S3_REGION", default="") or None,
            "access_key": env.str("COT_FIRMWARE_S3_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("COT_FIRMWARE_S3_SECRET_ACCESS_KEY", default="") or None,
            "location": env.str("COT_FIRMWARE_S3_PREFIX", default=""),
            "default_acl": "private",
            "file_overwrite": False,
        },
    }
elif FIRMWARE_STORAGE_KIND == "filesystem":
    STORAGES["firmware"] = {
        "BACKEND": "firmware.storage.FirmwareFileSystemStorage",
        "OPTIONS": {
            "location": env.str("COT_FIRMWARE_DIR", default=str(BASE_DIR / "var" / "firmware")),
        },
    }
else:
    raise environ.ImproperlyConfigured(f"COT_FIRMWARE_STORAGE: 'filesystem' or 's3', not {FIRMWARE_STORAGE_KIND!r}")
if DEBUG:
    STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}

X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
if TRUSTED_PROXIES:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
if PRODUCTION:
    SECURE_SSL_REDIRECT = env.bool("COT_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = 31536000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"axes": {"level": "WARNING"}},
}

if PRODUCTION:
    enforce_production_settings(
        debug=DEBUG,
        secret_key=SECRET_KEY,
        allowed_hosts=ALLOWED_HOSTS,
        development_secret_key=DEVELOPMENT_SECRET_KEY,
        token_hash_key=TOKEN_HASH_KEY,
        audit_chain_key=AUDIT_CHAIN_KEY,
        databases=DATABASES,
        migration_databases=MIGRATION_DATABASES,
    )
