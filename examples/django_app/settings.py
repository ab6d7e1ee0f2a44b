"""Settings of the Django example: the three tenancy lines are marked."""

import os

SECRET_KEY = "example-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
INSTALLED_APPS = ["django.contrib.contenttypes", "shop"]
ROOT_URLCONF = "urls"
MIDDLEWARE = ["tenancy.django.TenancyMiddleware"]  # tenancy (1): every response in the tenant's transaction
TENANCY = {
    "SOURCE": os.environ.get("TENANCY_SOURCE", "host"),
    "TEST_SUPERUSER_DSN": os.environ.get("DJANGO_SUPERUSER_DSN"),
}
TEST_RUNNER = "tenancy.django.TenancyTestRunner"  # tenancy (2): extension + registered tables in tests
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ.get("DJANGO_DB_HOST", ""),
        "PORT": os.environ.get("DJANGO_DB_PORT", ""),
        "NAME": os.environ.get("DJANGO_DB_NAME", "shop"),
        "USER": os.environ.get("DJANGO_DB_USER", ""),
        "PASSWORD": os.environ.get("DJANGO_DB_PASSWORD", ""),
        "TEST": {"TEMPLATE": os.environ.get("DJANGO_TEST_TEMPLATE", "tenancy_template")},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
