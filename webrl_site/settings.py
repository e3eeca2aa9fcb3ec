"""Settings, all from environment variables with defaults that work on a fresh development machine."""

from __future__ import annotations

import warnings
from pathlib import Path

from .env import (
    ConfigError,
    env_bool,
    env_int,
    env_list,
    env_path,
    env_str,
    parse_database_url,
    parse_redis_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

DEBUG = env_bool("DEBUG", False)  # `make run` and the tests turn it on
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ConfigError("SECRET_KEY", "required when DEBUG is off (set a long random string)")
    SECRET_KEY = "dev-insecure-key-only-for-debug-" + "x" * 32
elif len(SECRET_KEY) < 32 and not DEBUG:
    raise ConfigError("SECRET_KEY", "too short for production: use at least 50 random characters")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.postgres",
    "channels",
    "django_htmx",
    "template_partials",
    "ninja",
    "apps.runs",
    "apps.rollouts",
    "apps.curriculum",
    "apps.reviews",
    "apps.dashboard",
    "apps.api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files (htmx, the css and scripts) with DEBUG off too, straight from the app
    # directories and STATICFILES_DIRS (no collectstatic needed; compose runs it anyway).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "apps.api.middleware.api_json_errors",
]

ROOT_URLCONF = "webrl_site.urls"
ASGI_APPLICATION = "webrl_site.asgi.application"
WSGI_APPLICATION = None

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
                "apps.dashboard.context.roles",
            ],
        },
    }
]

DATABASE_URL = env_str("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/webrl")
DATABASES = {"default": parse_database_url("DATABASE_URL", DATABASE_URL)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = parse_redis_url("REDIS_URL", env_str("REDIS_URL", "redis://127.0.0.1:6379/0"))

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # redis-py's default 5 s socket timeout equals channels-redis's blocking pop, so a busy
        # machine drops consumers; give reads room.
        "CONFIG": {
            "hosts": [{"address": REDIS_URL, "socket_timeout": 30}],
            "capacity": 1500,
            "expiry": 30,
        },
    }
}

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = "default"
# Messages are acknowledged when a task starts, and the database claim is the truth about who works
# on what (docs/RELIABILITY.md, "Liveness"): a stage lasts hours, longer than any visibility timeout
# that still redelivers a lost message in useful time, and a redelivered stage running twice would
# share world instances. A message lost with its worker is re-sent by the reaper.
CELERY_TASK_ACKS_LATE = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE = {
    "reap-runs": {"task": "apps.runs.tasks.reap_runs", "schedule": 60.0},
    "prune-screenshots": {"task": "apps.runs.tasks.prune_screenshots", "schedule": 3600.0},
}
CELERY_QUEUES_EXPECTED = ["default", "rollout", "gpu"]
# /healthz asks the workers which queues they consume at most this often (a broadcast).
HEALTH_QUEUES_CACHE_S = env_int("HEALTH_QUEUES_CACHE_S", 5)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "runs:list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env_path("STATIC_ROOT", VAR_DIR / "static")
WHITENOISE_USE_FINDERS = True
# With the finders, STATIC_ROOT is optional (collectstatic fills it in deployments).
warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)

MEDIA_ROOT = env_path("MEDIA_ROOT", VAR_DIR / "media")
MEDIA_URL = "media/"
CHECKPOINT_ROOT = env_path("CHECKPOINT_ROOT", VAR_DIR / "checkpoints")
# Screenshots are kept for each run's newest N phases (beat prunes hourly); 0 keeps every one.
SCREENSHOT_KEEP_PHASES = env_int("SCREENSHOT_KEEP_PHASES", 2)
# Runs whose `run.report_to` has "tensorboard" write event files to TENSORBOARD_ROOT/run-<id>/.
TENSORBOARD_ROOT = env_path("TENSORBOARD_ROOT", VAR_DIR / "tensorboard")

# The built-in web world (sandbox) and WebArena's self-hosted sites.
WORLD_URL = env_str("WORLD_URL", "http://127.0.0.1:9400")
WORLD_INSTANCES = env_int("WORLD_INSTANCES", 2)
WEBARENA_URLS = {
    "shopping": env_str("WEBARENA_SHOPPING_URL", "http://127.0.0.1:7770"),
    "shopping_admin": env_str("WEBARENA_SHOPPING_ADMIN_URL", "http://127.0.0.1:7780/admin"),
    "reddit": env_str("WEBARENA_REDDIT_URL", "http://127.0.0.1:9999"),
    "gitlab": env_str("WEBARENA_GITLAB_URL", "http://127.0.0.1:8023"),
    "map": env_str("WEBARENA_MAP_URL", "http://127.0.0.1:3000"),
    "wikipedia": env_str("WEBARENA_WIKIPEDIA_URL", "http://127.0.0.1:8888"),
    "homepage": env_str("WEBARENA_HOMEPAGE_URL", "http://127.0.0.1:4399"),
}
CHROMIUM_PATH = env_str("CHROMIUM_PATH", "/usr/bin/chromium")
OPENAI_JUDGE_URL = env_str("OPENAI_JUDGE_URL", "")

RUN_HEARTBEAT_STALE_S = env_int("RUN_HEARTBEAT_STALE_S", 300)
# The hard limit on one stage, however alive its worker: the stage fails past it (48 h).
STAGE_TIME_LIMIT_S = env_int("STAGE_TIME_LIMIT_S", 48 * 3600)
# A running trajectory with no new step for this long belongs to a dead worker and is re-run.
TRAJECTORY_STALE_S = env_int("TRAJECTORY_STALE_S", 180)
# The watchdog's limit on one whole episode.
EPISODE_TIMEOUT_S = env_int("EPISODE_TIMEOUT_S", 900)
# A world instance's lease lapses this long after its holder's last renewal (holders renew every
# 2 s); then another run may take the instance over.
WORLD_LEASE_TTL_S = env_int("WORLD_LEASE_TTL_S", TRAJECTORY_STALE_S)
# How long the curriculum's observer waits for a free world instance.
WORLD_LEASE_WAIT_S = env_int("WORLD_LEASE_WAIT_S", 600)

if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # httpx logs every request at INFO: one line per world reset buries the stage progress bars.
    "loggers": {
        "django.channels.server": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}
