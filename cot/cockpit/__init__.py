"""The cockpit framework, beside the API framework (``cot.api``): what every app's admin pages build on.

``site`` is the admin site itself (login, notices, the lockout page), ``mixins`` the one
tenant-scoping ``ModelAdmin`` mixin and its forms, ``actions`` the bulk-action helpers.
Apps register their own pages in their ``admin`` package; nothing here knows them.
"""
