"""Curated example conversations: the catalogue read from a manifest, listed, shown and
analysed by name."""
