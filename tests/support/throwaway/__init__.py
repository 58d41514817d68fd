"""A throwaway app whose tenant-scoped model has no access rules: start-up must refuse it."""
