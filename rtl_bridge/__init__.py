"""rtl_bridge package."""
