"""diplosearch: semantic search over news and diplomatic reporting, with citations."""

__version__ = "0.1.0"
