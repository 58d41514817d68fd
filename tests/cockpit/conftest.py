"""Collect only the isolation checks that apply to each admin (none are skipped at run time)."""

from typing import Any

from tests.support.admin_isolation import applies


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    kept: list[Any] = []
    dropped: list[Any] = []
    for item in items:
        (kept if applies(getattr(item, "cls", None), item.originalname) else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
