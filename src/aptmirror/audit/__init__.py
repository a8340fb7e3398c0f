"""``apt-mirror verify``: re-check the published mirror against its own signed Release files."""
