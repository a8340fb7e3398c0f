"""debian package."""
