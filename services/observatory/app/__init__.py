"""Observatory: a conversation-analysis service."""

__version__ = "0.1.0"
