"""Shared test support: the isolation mixins every model's API and cockpit tests inherit, and helpers.

Test folders hold tests; what several folders use lives here, so no test module imports
another folder's test module.
"""
