"""
Fan-out / fan-in: one request goes to three services at once (async calls that wait side by
side), and an Aggregator sends on their answers together once all three have answered.
"""

import asyncio

from routilux import Flow, Routine
from routilux_stdlib import Aggregator


CATALOGUE = {
    "prices": {"sku-1": 19.5},
    "stock": {"sku-1": 3},
    "reviews": {"sku-1": 4.6},
}


class Request(Routine):
    """The entry: passes the product id on to every service."""

    def __init__(self):
        super().__init__()
        self.define_slot("trigger", self.ask)
        self.define_event("sku", ["sku"])

    def ask(self, sku, **_):
        self.emit("sku", sku=sku)


class Service(Routine):
    """One remote service: its config names the table it answers from."""

    def __init__(self):
        super().__init__()
        self.set_config(table=None)
        self.define_slot("input", self.lookup)
        self.define_event("answer", ["data"])

    async def lookup(self, sku, **_):
        await asyncio.sleep(0.1)  # the network round trip; the three wait at the same time
        self.emit("answer", data=CATALOGUE[self.get_config("table")][sku])


class Page(Routine):
    """Builds the product page from everything the aggregator gathered."""

    def __init__(self):
        super().__init__()
        self.define_slot("input", self.render)

    def render(self, by_source, reason, **_):
        self.send_output("page", reason=reason, **by_source)


def build_flow():
    flow = Flow("product-page", execution_strategy="concurrent", max_workers=4)
    flow.add_routine(Request(), "request")
    flow.add_routine(Aggregator(), "gather")  # waits for every routine wired to its input
    for name in CATALOGUE:
        service = Service()
        service.set_config(table=name)
        flow.add_routine(service, name)
        flow.connect("request", "sku", name, "input")
        flow.connect(name, "answer", "gather", "input")
    flow.add_routine(Page(), "page")
    flow.connect("gather", "output", "page", "input")
    return flow


def main():
    flow = build_flow()
    job = flow.execute("request", {"sku": "sku-1"}, timeout=30)
    print("status:", job.status)
    (page,) = [o["data"] for o in job.output_log if o["output_type"] == "page"]
    print("page:", dict(sorted(page.items())))
    flow.shutdown()


if __name__ == "__main__":
    main()
