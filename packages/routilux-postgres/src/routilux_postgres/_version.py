"""The version of routilux-postgres."""

__version__ = "0.10.0"
