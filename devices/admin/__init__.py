"""The devices app's cockpit pages, one module per subject; importing this package registers them.

Django's admin autodiscovery imports ``devices.admin``; each module registers its
``ModelAdmin`` with ``cot.cockpit.site.cockpit`` when imported here, and ``dashboard``
puts the fleet's panels on the cockpit's home page. ``device_page``
(the page of one device) and ``next_steps`` (empty states) are pieces the others use.
"""

from devices.admin import dashboard, devices, groups, payload, registry

dashboard.register()

__all__ = ["dashboard", "devices", "groups", "payload", "registry"]
