"""The database roles: the owner that runs migrations and the application role that serves requests."""
