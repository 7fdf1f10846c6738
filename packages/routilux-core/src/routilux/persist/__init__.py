"""
The persistence layer: job stores, the job runner and flow files (public face: ``routilux.store``).
"""
