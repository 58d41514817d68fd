"""The tenants app's cockpit pages, one module per subject; importing this package registers them.

Django's admin autodiscovery imports ``tenants.admin``; each module registers its
``ModelAdmin`` with ``cot.cockpit.site.cockpit`` when imported here.
"""

from tenants.admin import roles, support, tenants, tokens, users

__all__ = ["roles", "support", "tenants", "tokens", "users"]
