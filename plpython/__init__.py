"""The server-side Python of the tenancy extension (pure, standard library only)."""
