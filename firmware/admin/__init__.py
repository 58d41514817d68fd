"""The firmware app's cockpit pages, one module per subject; importing this package registers them.

Django's admin autodiscovery imports ``firmware.admin``; each module registers its
``ModelAdmin`` with ``cot.cockpit.site.cockpit`` when imported here.
"""

from firmware.admin import images, keys, policy

__all__ = ["images", "keys", "policy"]
