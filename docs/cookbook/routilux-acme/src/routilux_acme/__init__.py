"""
ACME's routines for routilux, found by type name through the ``routilux.routines`` entry points.
"""

import re

from routilux import Routine


__all__ = ["Slugify"]


class Slugify(Routine):
    """
    Turn text into a URL slug.

    Slot ``input`` takes ``text``; event ``output`` carries ``slug``.

    Config:
        separator (str): Put between words ("-").
    """

    def __init__(self):
        super().__init__()
        self.set_config(separator="-")
        self.define_slot("input", self.slugify)
        self.define_event("output", ["slug"])

    def slugify(self, text="", **_):
        words = re.findall(r"[a-z0-9]+", str(text).lower())
        self.emit("output", slug=self.get_config("separator").join(words))
