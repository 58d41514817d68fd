"""Find the test classes built on a mixin, so coverage checks need no hand-kept lists.

The coverage checks (every API endpoint, every cockpit admin, every group-scoped one has
its isolation test class) compare what the application registers with the test classes
that exist. Listing those classes by hand would let a new endpoint or admin slip through
by being left off the list; instead every test module is imported and the mixin's
subclasses are walked.
"""

from __future__ import annotations

import importlib
import pkgutil

import tests


def import_test_modules() -> None:
    """Import every module under ``tests/`` so each test class is defined."""
    for module in pkgutil.walk_packages(tests.__path__, "tests."):
        importlib.import_module(module.name)


def subclasses(cls: type) -> set[type]:
    """Every direct and indirect subclass of ``cls``."""
    found: set[type] = set()
    for sub in cls.__subclasses__():
        found |= {sub, *subclasses(sub)}
    return found


def classes_built_on(mixin: type) -> set[type]:
    """The classes pytest collects (named ``Test…``) that inherit ``mixin``, in any test module."""
    import_test_modules()
    return {cls for cls in subclasses(mixin) if cls.__name__.startswith("Test")}
