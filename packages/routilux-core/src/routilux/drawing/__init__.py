"""
The drawing layer: flows as DOT, Mermaid and images (public face: ``routilux.graph``).
"""
