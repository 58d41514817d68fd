"""The tenants app's cockpit pages, one module per subject; importing this package registers them.

Django's admin autodiscovery imports ``tenants.admin``; each module registers its
``ModelAdmin`` with ``cot.cockpit.site.cockpit`` when imported here; ``dashboard`` adds
the support access panel to the home page.
"""

from tenants.admin import dashboard, roles, support, tenants, tokens, users

dashboard.register()

__all__ = ["dashboard", "roles", "support", "tenants", "tokens", "users"]
