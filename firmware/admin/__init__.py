"""The firmware app's cockpit pages, one module per subject; importing this package registers them.

Django's admin autodiscovery imports ``firmware.admin``; each module registers its
``ModelAdmin`` with ``cot.cockpit.site.cockpit`` when imported here, and
``device_history`` adds its section to the device page (``devices.admin.sections``).
"""

from firmware.admin import device_history, images, keys, policy, rollouts

device_history.register()

__all__ = ["device_history", "images", "keys", "policy", "rollouts"]
