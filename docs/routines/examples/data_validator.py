"""DataValidator: valid rows go on, invalid ones go to ``invalid`` with the reasons."""

from routilux import Flow
from routilux.history import EmitRecord
from routilux_stdlib import DataValidator


def build_flow():
    check = DataValidator()
    check.set_config(rules={"age": "is_positive"}, required_fields=["name"])
    flow = Flow("validate")
    flow.add_routine(check, "check")
    return flow


def main():
    flow = build_flow()
    for row in ({"name": "ada", "age": 36}, {"age": -1}):
        job = flow.execute("check", {"data": row}, entry_slot="input")
        (record,) = [r for r in job.execution_history if isinstance(r, EmitRecord)]
        if record.event_name == "valid":
            print("valid", record.data["validated_data"])
        else:
            print("invalid", record.data["errors"])
    flow.shutdown()


if __name__ == "__main__":
    main()
