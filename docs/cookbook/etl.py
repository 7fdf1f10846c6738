"""
An ETL job: the rows are checked, the good ones loaded into a database in batches of two, and
the bad ones sent down a dead-letter path with the reasons they were refused.
"""

import sqlite3

from routilux import Flow, Routine
from routilux_stdlib import Batcher, Filter, Splitter, register_predicate


DATABASE = "warehouse.db"

ROWS = [
    {"id": 1, "email": "ada@example.com", "amount": 30},
    {"id": 2, "email": "bob@example.com", "amount": 12},
    {"id": 3, "amount": 7},
    {"id": 4, "email": "cy@example.com", "amount": -5},
    {"id": 5, "email": "di@example.com", "amount": 99},
]


def problems(row):
    """What is wrong with a row (nothing for a good one)."""
    found = [f"no {field}" for field in ("id", "email", "amount") if field not in row]
    if row.get("amount", 0) <= 0:
        found.append("amount must be positive")
    return found


@register_predicate
def is_good_row(data):
    return not problems(data)


class Load(Routine):
    """Writes a batch of orders in one transaction (again on a re-run: the id is the key)."""

    def __init__(self):
        super().__init__()
        self.define_slot("input", self.load)

    def load(self, items, index, **_):
        with sqlite3.connect(DATABASE) as db:
            db.execute("CREATE TABLE IF NOT EXISTS orders (id PRIMARY KEY, email, amount)")
            db.executemany(
                "INSERT OR REPLACE INTO orders VALUES (:id, :email, :amount)",
                items,
            )
        self.send_output("loaded", batch=index, rows=len(items))


class DeadLetter(Routine):
    """Keeps a refused row and why, for a person to look at later."""

    def __init__(self):
        super().__init__()
        self.define_slot("input", self.keep)

    def keep(self, data, **_):
        with sqlite3.connect(DATABASE) as db:
            db.execute("CREATE TABLE IF NOT EXISTS dead_letters (row, problems)")
            db.executemany(
                "INSERT INTO dead_letters VALUES (?, ?)",
                [(repr(row), "; ".join(problems(row))) for row in data],
            )


def build_flow():
    check = Filter()
    check.set_config(condition="is_good_row")  # the good rows on output, the others rejected
    batch = Batcher()
    batch.set_config(batch_size=2)
    flow = Flow("orders-etl")
    flow.add_routine(check, "check")
    flow.add_routine(Splitter(), "split")
    flow.add_routine(batch, "batch")
    flow.add_routine(Load(), "load")
    flow.add_routine(DeadLetter(), "dead_letter")
    flow.connect("check", "output", "split", "input")
    flow.connect("check", "rejected", "dead_letter", "input")
    flow.connect("split", "item", "batch", "input")
    flow.connect("split", "done", "batch", "flush")  # the last, short batch
    flow.connect("batch", "batch", "load", "input")
    return flow


def main():
    flow = build_flow()
    job = flow.execute("check", {"data": ROWS}, entry_slot="input")
    print("status:", job.status)
    for output in job.output_log:
        print("loaded batch {batch}: {rows} row(s)".format(**output["data"]))
    with sqlite3.connect(DATABASE) as db:
        print("orders:", db.execute("SELECT id FROM orders ORDER BY id").fetchall())
        for row, found in db.execute("SELECT * FROM dead_letters"):
            print("dead letter:", row, "-", found)
    flow.shutdown()


if __name__ == "__main__":
    main()
