"""The project's settings plus the throwaway app (``tests/tenants/test_access_table.py``)."""

from cot.settings import *  # noqa: F403
from cot.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.support.throwaway"]
