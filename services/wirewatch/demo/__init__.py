"""Bundled offline demo for ``wirewatch up --demo``: fictional outlets serving RSS feeds and article pages."""
