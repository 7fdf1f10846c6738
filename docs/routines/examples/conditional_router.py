"""ConditionalRouter: a registered predicate, a safe expression and a field match."""

from routilux import Flow
from routilux.history import EmitRecord
from routilux_stdlib import ConditionalRouter, register_predicate


@register_predicate
def is_urgent(data):
    return data.get("priority") == "high"


def build_flow():
    router = ConditionalRouter()
    router.add_route("urgent", "is_urgent")  # a registered predicate, by name
    router.add_route("big", "data.get('amount', 0) > config['limit']")  # a safe expression
    router.add_route("blue", {"color": "blue"})  # field matching
    router.set_config(limit=100, default_route="other")
    flow = Flow("routing")
    flow.add_routine(router, "route")
    return flow


def main():
    flow = build_flow()
    for data in ({"priority": "high"}, {"amount": 500}, {"color": "blue"}, {}):
        job = flow.execute("route", {"data": data}, entry_slot="input")
        (record,) = [r for r in job.execution_history if isinstance(r, EmitRecord)]
        print(data, "->", record.event_name)
    flow.shutdown()


if __name__ == "__main__":
    main()
