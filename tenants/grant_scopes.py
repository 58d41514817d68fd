"""What a support grant may be limited to: device groups, which the devices app owns.

``tenants`` never imports the apps above it, yet a customer administrator limits a grant
to some of their device groups. The devices app registers, from ``DevicesConfig.ready``,
the function that lists the groups a user may choose (through the access layer); grants
store the chosen ids (``SupportGrant.device_groups``), and the access rules of the device
models read them from the caller (``Caller.device_group_limit``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

GroupChoices = Callable[[Any], list[tuple[int, str]]]

_choices: list[GroupChoices] = []


def register_device_groups(choices: GroupChoices) -> None:
    """Name the function that lists ``(id, name)`` of the device groups a user sees."""
    _choices[:] = [choices]


def device_group_choices(user: Any) -> list[tuple[int, str]]:
    """The device groups ``user`` sees, as ``(id, name)``; none while no app registered them."""
    return _choices[0](user) if _choices else []


def device_group_names(user: Any, ids: list[int]) -> list[str]:
    """The names of the groups ``ids`` that ``user`` sees, in the order of ``ids``."""
    names = dict(device_group_choices(user))
    return [names[pk] for pk in ids if pk in names]
