"""Hosted HTML pages (the recovery wizard, the help form, development tools)."""
