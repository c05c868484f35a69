"""fusion room."""
