"""recorded room."""
