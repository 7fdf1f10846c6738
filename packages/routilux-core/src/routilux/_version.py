"""The version of routilux-core."""

__version__ = "0.10.0"
