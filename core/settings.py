"""Django settings, from the environment (django-environ).

Quick start (no variables set): SQLite file under ./var, Celery tasks run eagerly, mail to the
console, DEBUG on. Production: ``BACKOFFICE_ENV=production`` requires SECRET_KEY,
FIELD_ENCRYPTION_KEY, DATABASE_URL, CELERY_BROKER_URL and ALLOWED_HOSTS, and turns on HTTPS
redirects, HSTS and secure cookies so that ``manage.py check --deploy`` is clean.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from csp.constants import NONE, SELF, UNSAFE_EVAL, UNSAFE_INLINE
from django.templatetags.static import static

from core.system_settings import load_system_settings

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
VAR_DIR.mkdir(exist_ok=True)

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

BACKOFFICE_ENV = env.str("BACKOFFICE_ENV", default="development")
PRODUCTION = BACKOFFICE_ENV == "production"

if PRODUCTION:
    SECRET_KEY = env.str("SECRET_KEY")
    FIELD_ENCRYPTION_KEY = env.str("FIELD_ENCRYPTION_KEY")
    DEBUG = False
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
    DATABASES = {"default": env.db_url("DATABASE_URL")}
    CELERY_BROKER_URL = env.str("CELERY_BROKER_URL")
else:
    # Development keys only: production refuses to start without real ones.
    SECRET_KEY = env.str("SECRET_KEY", default="dev-insecure-secret-key-change-me-0123456789abcdef")
    FIELD_ENCRYPTION_KEY = env.str(
        "FIELD_ENCRYPTION_KEY", default="dGVzdC1rZXktZm9yLWRldmVsb3BtZW50LW9ubHktMDE="
    )
    DEBUG = env.bool("DEBUG", default=True)
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
    DATABASES = {
        "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'backoffice.sqlite3'}")
    }
    CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")

# Where customers reach the hosted invoice pages: the scheme and host in emailed links
# (required in production, where it must be https).
PUBLIC_BASE_URL = (
    env.str("PUBLIC_BASE_URL")
    if PRODUCTION
    else env.str("PUBLIC_BASE_URL", default=f"http://127.0.0.1:{env.str('PORT', default='8000')}")
).rstrip("/")
if PRODUCTION and not PUBLIC_BASE_URL.startswith("https://"):
    raise environ.ImproperlyConfigured("PUBLIC_BASE_URL must be an https:// address in production.")
# How long a hosted invoice link stays valid after it is made.
INVOICE_LINK_DAYS = env.int("INVOICE_LINK_DAYS", default=180)
# The customer portal: a magic link works once for this long; a session ends after this
# long without a visit, or this long in all.
PORTAL_LINK_MINUTES = env.int("PORTAL_LINK_MINUTES", default=30)
PORTAL_IDLE_MINUTES = env.int("PORTAL_IDLE_MINUTES", default=30)
PORTAL_SESSION_HOURS = env.int("PORTAL_SESSION_HOURS", default=8)

DATABASES["default"].setdefault("ATOMIC_REQUESTS", False)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The quick-start demo runs many writers (runserver threads, eager jobs) on one file.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
    # Covering indexes (INCLUDE) are PostgreSQL's; SQLite builds them without the extra
    # columns, which the demo's sizes do not miss.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
else:
    # Connections are kept between requests only under a server with a fixed number of
    # threads (production: workers x threads + the Celery workers must stay under
    # PostgreSQL's max_connections). The development server starts a thread per request, and
    # a burst of kept connections exhausted PostgreSQL: there each request closes its own.
    DATABASES["default"].setdefault(
        "CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60 if PRODUCTION else 0)
    )
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

# Business rules (ARCHITECTURE.md "System settings"), validated before anything else starts.
SYSTEM_SETTINGS = load_system_settings(env.str("SYSTEM_SETTINGS_FILE", default="") or None)

INSTALLED_APPS = [
    # django-unfold (the workspace theme) goes before django.contrib.admin, as it asks; its
    # basic config keeps our OTP site as admin.site (the default one would replace it).
    "unfold.apps.BasicAppConfig",
    "unfold.contrib.filters",
    "unfold.contrib.forms",
    "unfold.contrib.import_export",
    "unfold.contrib.simple_history",
    "core.admin_apps.BackofficeAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    # django-otp's plugins stay installed for the migration history only (core 0002 names
    # them; core 0007 moved their devices to core.otp): their tables are empty and refuse rows.
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    "rest_framework",
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "djmoney",
    "simple_history",
    "import_export",
    "django_celery_beat",
    "core",
    "core.ledger",
    "core.events",
    "billing",
    "receivables",
    "payables",
    "reconciliation",
    "reporting",
    "portal",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # /api/: no-store on every answer; an address failing authentication too often is
    # refused before any token is looked up (core.api.throttling).
    "core.api.throttling.NoStoreMiddleware",
    "core.api.throttling.AuthFailureThrottleMiddleware",
    # Content-Security-Policy on every answer (CONTENT_SECURITY_POLICY below; the customer
    # pages' own stricter one comes from billing.hosted.headers).
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Refuses card numbers before anything could hash, store or log them (PCI, C1).
    "billing.api.processor_views.CardNumberGuardMiddleware",
    "core.idempotency.IdempotencyMiddleware",
    # An address spraying passwords over usernames (core.login_throttle).
    "core.login_throttle.LoginAddressLockMiddleware",
    # Last, as django-axes asks: it turns a lockout into its response.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "core.urls"
WSGI_APPLICATION = "core.wsgi.application"

# The finance workspace (django-unfold): sidebar grouped by domain, built per request from
# what the person may see (core.admin_nav).
UNFOLD = {
    "SITE_TITLE": "Back-office",
    "SITE_HEADER": "Back-office",
    "SITE_SUBHEADER": "Finance workspace",
    "SITE_SYMBOL": "account_balance",
    "SITE_URL": "/admin/",
    "SHOW_VIEW_ON_SITE": False,
    "BORDER_RADIUS": "4px",
    # Our own icon: without one every page asks for /favicon.ico and logs a 404.
    "SITE_FAVICONS": [
        {
            "rel": "icon",
            "type": "image/svg+xml",
            "href": lambda request: static("core/favicon.svg"),
        }
    ],
    "SIDEBAR": {
        "show_search": True,
        "show_all_applications": False,
        "navigation": "core.admin_nav.navigation",
    },
}

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

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
# Billing periods start at midnight in this zone (usage before it belongs to the period).
BILLING_TIME_ZONE = env.str("BILLING_TIME_ZONE", default=TIME_ZONE)
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = env.path("MEDIA_ROOT", default=str(VAR_DIR / "media"))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="billing@backoffice.localhost")

# django-money: only the currencies the product deals in are offered in forms.
DEFAULT_CURRENCY = SYSTEM_SETTINGS.billing.currency
CURRENCY_DECIMAL_PLACES = 4

# --- Security -----------------------------------------------------------------------------
LOGIN_URL = "admin:login"
LOGIN_REDIRECT_URL = "admin:index"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 3600)
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# Content-Security-Policy (django-csp), enforced on every page. This is the staff pages'
# policy (the workspace, login with its second factor, approval screens, the API and its docs);
# the customer pages replace it with their own (billing.hosted.headers.customer_page_headers).
# Scripts only from our own static files: no inline script, no other site. The weaker
# allowances (README, design notes): 'unsafe-eval' for Alpine.js (django-unfold), which
# evaluates its x-data/x-on expressions with new Function(); 'unsafe-inline' styles for the
# style attributes and <style> blocks of unfold's templates and ours (theme colours, widths);
# data: images for Swagger UI's icons (the API docs).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [NONE],
        "script-src": [SELF, UNSAFE_EVAL],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "base-uri": [NONE],
        "object-src": [NONE],
    }
}

# django-otp: TOTP codes are accepted once, and a device is throttled after failures.
OTP_TOTP_ISSUER = "Back-office"
OTP_TOTP_THROTTLE_FACTOR = 1
OTP_STATIC_THROTTLE_FACTOR = 1

# django-axes: repeated bad passwords lock that username from that address for a while.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Every failed login kept (AccessFailureLog), not only the attempt counters a success resets:
# the compliance report of failed and locked-out logins reads it.
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
# One address failing to sign in this often within the window (whatever the usernames) may
# not try again until it ends (core.login_throttle).
LOGIN_FAILURES_PER_IP = env.int("LOGIN_FAILURES_PER_IP", default=30)
LOGIN_FAILURE_WINDOW = timedelta(minutes=env.int("LOGIN_FAILURE_WINDOW_MINUTES", default=15))

# --- API ----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "knox.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["core.api.permissions.HasRequiredPermissions"],
    "DEFAULT_PARSER_CLASSES": [
        "core.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "core.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.errors.exception_handler",
    "COERCE_DECIMAL_TO_STRING": True,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Rates in API_THROTTLE_RATES (core.api.throttling).
    "DEFAULT_THROTTLE_CLASSES": [
        "core.api.throttling.TokenBurstThrottle",
        "core.api.throttling.TokenThrottle",
        "core.api.throttling.AddressThrottle",
    ],
    # Behind a proxy set this to how many add X-Forwarded-For (the address throttled).
    "NUM_PROXIES": env.int("API_NUM_PROXIES", default=0) or None,
}
# API rate limits (429 with Retry-After): one token's calls (a burst, and a minute's worth),
# every call from one address; an address that failed authentication
# API_AUTH_FAILURES_PER_IP times within the window is refused until it ends.
API_THROTTLE_RATES = {
    "token_burst": env.str("API_THROTTLE_TOKEN_BURST", default="50/sec"),
    "token": env.str("API_THROTTLE_TOKEN", default="1200/min"),
    "address": env.str("API_THROTTLE_ADDRESS", default="3000/min"),
}
API_AUTH_FAILURES_PER_IP = env.int("API_AUTH_FAILURES_PER_IP", default=20)
API_AUTH_FAILURE_WINDOW = timedelta(minutes=env.int("API_AUTH_FAILURE_WINDOW_MINUTES", default=10))
# The cache the rate limits count in: Redis shared by every process and machine
# (CACHE_URL; in production the broker's Redis when not set), else this process's memory.
CACHE_URL = env.str(
    "CACHE_URL",
    default=CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else "",
)
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
        if CACHE_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}
REST_KNOX = {
    # Tokens are stored as SHA-512 digests; integrations get long-lived tokens.
    "TOKEN_TTL": None,
    "AUTO_REFRESH": False,
    "AUTH_HEADER_PREFIX": "Token",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Back-office API",
    "DESCRIPTION": "Billing, receivables, payables, reconciliation and the ledger.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Several resources have a "status" of their own: name their enums apart.
    "ENUM_NAME_OVERRIDES": {
        "SignOffStatusEnum": "reconciliation.enums.SignOffStatus",
        "ExceptionStatusEnum": "reconciliation.enums.ExceptionStatus",
        "PayoutStatusEnum": "reconciliation.enums.PayoutStatus",
        "FeedStatusEnum": "reconciliation.enums.FeedStatus",
        "AgingBucketEnum": "core.aging.AgingBucket",
        "CurrencyEnum": "core.api.fields.CURRENCY_CODES",
    },
}

# --- Celery -------------------------------------------------------------------------------
# Without a broker (quick start) tasks run in-process, eagerly.
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
if not CELERY_BROKER_URL:
    CELERY_BROKER_URL = "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
# No task lost or doubled: acknowledge after the work, requeue when the worker dies, and let a
# task run longer than any timeout before Redis hands it to another worker. Tasks are
# idempotent, so a redelivered message (a killed pool process's at once, a whole killed
# worker's after the visibility timeout) runs again with one effect (RELIABILITY.md F1, F2).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 60 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 55 * 60
# Seconds; keep it above CELERY_TASK_TIME_LIMIT (the fault tests lower it for their worker).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=2 * 60 * 60)
}
# Retries are bounded for every task (core.celery.BoundedRetryTask: 3 by default, exponential
# backoff); a task that gives up is recorded as a core.TaskFailure (F3).
CELERY_TASK_DEFAULT_RETRY_DELAY = 30
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    # Today's KPI figures, stored once (a rerun the same day changes nothing).
    "reporting-kpi-snapshot-daily": {
        "task": "reporting.kpi_snapshot",
        "schedule": crontab(hour=23, minute=50),
    },
    # The customers' payment timing the cash-flow projection reads for today (at most two
    # hours old, or the projection computes it itself).
    "reporting-payment-timing-refresh-hourly": {
        "task": "reporting.payment_timing_refresh",
        "schedule": crontab(minute=5),
    },
    # Before the check: the day's totals folded to one row per account, currency and day.
    "ledger-day-totals-compact-nightly": {
        "task": "ledger.day_totals_compact",
        "schedule": crontab(hour=2, minute=0),
    },
    "ledger-check-nightly": {
        "task": "ledger.ledger_check",
        "schedule": crontab(hour=2, minute=15),
    },
    "billing-run-daily": {
        "task": "billing.billing_run",
        "schedule": crontab(hour=1, minute=0),
    },
    # After the billing run: reminders, late fees, escalations due today.
    "receivables-collections-run-daily": {
        "task": "receivables.collections_run",
        "schedule": crontab(hour=1, minute=30),
    },
    "receivables-payment-plans-run-daily": {
        "task": "receivables.payment_plans_run",
        "schedule": crontab(hour=1, minute=45),
    },
    # Stripe chargebacks stored by the webhook become disputes (and postings when lost).
    "receivables-chargeback-events-apply": {
        "task": "receivables.chargeback_events_apply",
        "schedule": timedelta(minutes=5),
    },
    # Outbound events: invoices past due told once (invoice.overdue).
    "billing-invoices-overdue-announce": {
        "task": "billing.invoices_overdue_announce",
        "schedule": crontab(minute=20),
    },
    # Outbound events: retries come due, and whatever a lost queue message left.
    "events-send": {
        "task": "events.send",
        "schedule": timedelta(seconds=15),
    },
    # Autopay: first tries not yet made, retries due, tries in flight looked at again.
    "billing-autopay-run": {
        "task": "billing.autopay_run",
        "schedule": timedelta(minutes=5),
    },
    "billing-card-expiry-reminders-daily": {
        "task": "billing.card_expiry_reminders",
        "schedule": crontab(hour=8, minute=0),
    },
    # Removed Stripe cards whose detachment at Stripe did not happen after the removal.
    "billing-payment-methods-processor-detach-sweep": {
        "task": "billing.payment_methods_processor_detach_sweep",
        "schedule": crontab(minute=40),
    },
    # Charges whose processor did not answer are asked about until resolved (F4).
    "billing-processor-attempts-resolve": {
        "task": "billing.processor_attempts_resolve",
        "schedule": timedelta(minutes=10),
    },
    # Approved payment runs whose payment date has come: bank file exported, run paid.
    "payables-payment-runs-process-daily": {
        "task": "payables.payment_runs_process",
        "schedule": crontab(hour=6, minute=0),
    },
    # Bank feeds (Plaid, Yodlee): active and failing feeds, each on its own.
    "reconciliation-feeds-sync": {
        "task": "reconciliation.feeds_sync",
        "schedule": timedelta(hours=1),
    },
    # Stripe payouts and their balance transactions (nothing without STRIPE_SECRET_KEY).
    "reconciliation-payouts-import": {
        "task": "reconciliation.payouts_import",
        "schedule": crontab(minute=20),
    },
    # PayPal settlements (Transaction Search: withdrawals to the bank and what they swept).
    "reconciliation-paypal-settlements-import": {
        "task": "reconciliation.paypal_settlements_import",
        "schedule": crontab(minute=25),
    },
    # After the night's feeds and imports: unmatched lines, differences, duplicates, gaps.
    "reconciliation-exceptions-detect-daily": {
        "task": "reconciliation.exceptions_detect",
        "schedule": crontab(hour=6, minute=30),
    },
}

# --- Reconciliation -------------------------------------------------------------------------
# Matches at or above this confidence (0..1, read as a Decimal) are applied at once; below it
# they wait as suggestions.
RECONCILIATION_AUTO_MATCH_THRESHOLD = env.str("RECONCILIATION_AUTO_MATCH_THRESHOLD", default="0.95")
# A bank line still unmatched this many days after its booking date is an exception.
RECONCILIATION_UNMATCHED_DAYS = env.int("RECONCILIATION_UNMATCHED_DAYS", default=5)
# Bank feeds (secrets from the environment only; each feed's own token is encrypted in the
# database). Yodlee's API base is per customer environment.
PLAID_CLIENT_ID = env.str("PLAID_CLIENT_ID", default="")
PLAID_SECRET = env.str("PLAID_SECRET", default="")
PLAID_API_BASE = env.str("PLAID_API_BASE", default="https://sandbox.plaid.com")
YODLEE_CLIENT_ID = env.str("YODLEE_CLIENT_ID", default="")
YODLEE_SECRET = env.str("YODLEE_SECRET", default="")
YODLEE_API_BASE = env.str("YODLEE_API_BASE", default="")

# --- Outbound webhooks (core.events) -------------------------------------------------------------
# Endpoints may point at private and loopback addresses (SSRF) only in development.
WEBHOOK_ALLOW_PRIVATE_ADDRESSES = env.bool(
    "WEBHOOK_ALLOW_PRIVATE_ADDRESSES", default=BACKOFFICE_ENV == "development"
)
if PRODUCTION and WEBHOOK_ALLOW_PRIVATE_ADDRESSES:
    raise environ.ImproperlyConfigured(
        "WEBHOOK_ALLOW_PRIVATE_ADDRESSES may not be set in production."
    )
# Requests sent at once by one worker; an endpoint failing every try this long (and this
# many times) is disabled and its owner told.
WEBHOOK_SEND_THREADS = env.int("WEBHOOK_SEND_THREADS", default=8)
WEBHOOK_DISABLE_AFTER_HOURS = env.float("WEBHOOK_DISABLE_AFTER_HOURS", default=24)
WEBHOOK_DISABLE_AFTER_FAILURES = env.int("WEBHOOK_DISABLE_AFTER_FAILURES", default=50)

# --- Payment processors (secrets from the environment only) ------------------------------------
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
# Comma-separated while rotating the webhook secret.
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="") or None
STRIPE_TIMEOUT_SECONDS = env.float("STRIPE_TIMEOUT_SECONDS", default=30.0)
STRIPE_MAX_NETWORK_RETRIES = env.int("STRIPE_MAX_NETWORK_RETRIES", default=0)
STRIPE_WEBHOOK_TOLERANCE_SECONDS = 300
PAYPAL_CLIENT_ID = env.str("PAYPAL_CLIENT_ID", default="")
PAYPAL_CLIENT_SECRET = env.str("PAYPAL_CLIENT_SECRET", default="")
PAYPAL_API_BASE = env.str("PAYPAL_API_BASE", default="https://api-m.sandbox.paypal.com")
PAYPAL_WEBHOOK_ID = env.str("PAYPAL_WEBHOOK_ID", default="")
PAYPAL_TIMEOUT_SECONDS = env.float("PAYPAL_TIMEOUT_SECONDS", default=30.0)
PAYPAL_RETURN_URL = env.str("PAYPAL_RETURN_URL", default="")
PAYPAL_CANCEL_URL = env.str("PAYPAL_CANCEL_URL", default="")
COINBASE_COMMERCE_API_KEY = env.str("COINBASE_COMMERCE_API_KEY", default="")
COINBASE_COMMERCE_API_BASE = env.str(
    "COINBASE_COMMERCE_API_BASE", default="https://api.commerce.coinbase.com"
)
COINBASE_COMMERCE_WEBHOOK_SECRET = env.str("COINBASE_COMMERCE_WEBHOOK_SECRET", default="")
COINBASE_COMMERCE_TIMEOUT_SECONDS = env.float("COINBASE_COMMERCE_TIMEOUT_SECONDS", default=30.0)
COINBASE_COMMERCE_REDIRECT_URL = env.str("COINBASE_COMMERCE_REDIRECT_URL", default="")
# PayPal settlements: how far before the period the report is read to find where its first
# settlement (the balance swept by a withdrawal to the bank) began.
PAYPAL_SETTLEMENT_LOOKBACK_DAYS = env.int("PAYPAL_SETTLEMENT_LOOKBACK_DAYS", default=31)
COINBASE_COMMERCE_CANCEL_URL = env.str("COINBASE_COMMERCE_CANCEL_URL", default="")
# The processors' checkout pages the hosted invoice page's forms may lead to (its
# Content-Security-Policy form-action): Stripe Checkout, PayPal (live and sandbox), Coinbase
# Commerce. Tests add their local fakes' origins.
HOSTED_CHECKOUT_ORIGINS = env.list(
    "HOSTED_CHECKOUT_ORIGINS",
    default=[
        "https://checkout.stripe.com",
        "https://www.paypal.com",
        "https://www.sandbox.paypal.com",
        "https://commerce.coinbase.com",
    ],
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # Card numbers are masked in every line (a query string the server logs, a message
    # quoting input) before it is written.
    "filters": {"card_numbers": {"()": "core.card_numbers.CardNumberLogFilter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["card_numbers"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # The development server's request lines, through the same filtered handler.
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.db.backends": {"level": "WARNING"},
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}
