"""
The version of routilux-ui.
"""

__version__ = "0.10.0"
