"""dla package."""
