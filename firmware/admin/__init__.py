"""The firmware app's cockpit pages, one module per subject; importing this package registers them.

Django's admin autodiscovery imports ``firmware.admin``; each module registers its
``ModelAdmin`` with ``cot.cockpit.site.cockpit`` when imported here, and
``device_history`` adds its section to the device page (``devices.admin.sections``),
``dashboard`` the rollouts under way to the cockpit's home page.
"""

from firmware.admin import dashboard, device_history, images, keys, policy, rollouts

device_history.register()
dashboard.register()

__all__ = ["dashboard", "device_history", "images", "keys", "policy", "rollouts"]
