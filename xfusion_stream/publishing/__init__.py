"""publishing room."""
