"""envspec: one typed spec for development, staging and production."""

__version__ = "0.1.0"
