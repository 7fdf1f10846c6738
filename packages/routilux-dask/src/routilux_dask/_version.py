"""The version of routilux-dask."""

__version__ = "0.10.0"
