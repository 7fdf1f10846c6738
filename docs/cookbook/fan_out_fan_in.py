"""
Fan-out / fan-in: one request goes to three services at once (async calls that wait side by
side), each call bounded by a timeout, and an Aggregator sends on their answers together once
all three have answered (a service that timed out answers ``"no answer"``).
"""

import asyncio

from routilux import Flow, Routine
from routilux_stdlib import Aggregator


CATALOGUE = {
    "prices": {"sku-1": 19.5},
    "stock": {"sku-1": 3},
    "reviews": {"sku-1": 4.6},
}
TIMEOUT = 1.0  # seconds a service has to answer


async def call_service(table, sku):
    """Stands in for a remote service: the reviews service is down and never answers."""
    if table == "reviews":
        await asyncio.Event().wait()  # no answer, ever
    await asyncio.sleep(0.1)  # the network round trip
    return CATALOGUE[table][sku]


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
        # The three calls wait at the same time; none waits longer than TIMEOUT.
        try:
            data = await asyncio.wait_for(call_service(self.get_config("table"), sku), TIMEOUT)
        except asyncio.TimeoutError:  # TimeoutError itself from Python 3.11 on
            data = "no answer"  # the page is built without it
        self.emit("answer", data=data)


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
    job = flow.execute("request", {"sku": "sku-1"}, timeout=30)  # the whole job: 30 s at most
    print("status:", job.status)
    (page,) = [o["data"] for o in job.output_log if o["output_type"] == "page"]
    print("page:", dict(sorted(page.items())))
    flow.shutdown()


if __name__ == "__main__":
    main()
