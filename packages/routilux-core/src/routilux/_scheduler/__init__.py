"""
The private scheduling core: per-job run queues over a flow's shared worker pool.
"""
