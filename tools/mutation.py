"""
Mutation testing of one module: change it one small way at a time and check a test fails.

A mutant is one change: a comparison flipped (``==``/``!=``, ``<``/``>=``...), a condition
negated (``if``, ``while``, ``assert``, conditional expressions), ``and``/``or`` swapped,
``True``/``False`` swapped, an integer constant moved by one, or a statement deleted (a call,
an assignment, a ``return``/``break``/``continue``/``raise`` replaced by ``pass``). For each
mutant only the tests that ran its line run (found once with coverage's per-test contexts),
stopping at the first failure, under a time limit. The outcome of a mutant is one of:

* ``killed``: a test failed (what we want);
* ``hung``: a test ran past ``--test-timeout`` or the tests past the limit (caught, but
  only by hanging);
* ``survived``: every test passed (a gap in the tests, unless the mutant cannot change
  behaviour: list those in ``tools/mutation-equivalent.txt`` with the reason);
* ``uncovered``: no test runs the line.

Usage (from the repository root, in the project's virtual environment)::

    python tools/mutation.py packages/routilux-core/src/routilux/model/_lifecycle.py
    python tools/mutation.py PATH --tests tests/core tests/stress --limit 40 --seed 1

It needs ``coverage`` (the ``mutation`` dependency group: ``pip install --group mutation``).
The module is restored after every mutant, also on Ctrl-C. Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import attrs


ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TESTS = ("tests/core", "tests/stress", "tests/integration")
EQUIVALENT = ROOT / "tools" / "mutation-equivalent.txt"

_FLIPS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.GtE,
    ast.GtE: ast.Lt,
    ast.Gt: ast.LtE,
    ast.LtE: ast.Gt,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
_DELETABLE = (ast.Expr, ast.Assign, ast.AugAssign, ast.Return, ast.Break, ast.Continue, ast.Raise)


@attrs.frozen
class Mutant:
    """One change to the module: where, and what."""

    line: int
    kind: str
    what: str
    #: Position of the node in ``ast.walk`` order, to find it again in a fresh tree.
    index: int


@attrs.define
class Outcome:
    """What the tests made of one mutant."""

    mutant: Mutant
    result: str
    seconds: float
    tests: int
    detail: str = ""


def _describe(node: ast.AST) -> str:
    text = ast.unparse(node)
    return text if len(text) < 60 else text[:57] + "..."


def find_mutants(tree: ast.Module) -> list[Mutant]:
    """Every mutant of the module, in source order."""
    found: list[Mutant] = []
    # Strings standing alone (docstrings, attribute docstrings) and ``if TYPE_CHECKING:``
    # change nothing at run time.
    inert = {
        id(node)
        for node in ast.walk(tree)
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        )
        or (isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING")
    }
    for index, node in enumerate(ast.walk(tree)):
        if id(node) in inert:
            continue
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Compare) and type(node.ops[0]) in _FLIPS:
            found.append(Mutant(line, "flip-compare", _describe(node), index))
        elif isinstance(node, (ast.If, ast.While, ast.Assert, ast.IfExp)):
            found.append(Mutant(line, "negate-condition", _describe(node.test), index))
        elif isinstance(node, ast.BoolOp):
            found.append(Mutant(line, "swap-and-or", _describe(node), index))
        elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
            found.append(Mutant(line, "swap-bool", repr(node.value), index))
        elif isinstance(node, ast.Constant) and type(node.value) is int:
            found.append(Mutant(line, "int-plus-one", repr(node.value), index))
        elif isinstance(node, _DELETABLE):
            found.append(Mutant(line, "delete-statement", _describe(node), index))
    found.sort(key=lambda m: (m.line, m.index))
    return found


def apply(tree: ast.Module, mutant: Mutant) -> str:
    """Return the module's source with ``mutant`` applied (to a copy of ``tree``)."""
    tree = copy.deepcopy(tree)
    node = list(ast.walk(tree))[mutant.index]
    if mutant.kind == "flip-compare":
        assert isinstance(node, ast.Compare)
        node.ops[0] = _FLIPS[type(node.ops[0])]()
    elif mutant.kind == "negate-condition":
        assert isinstance(node, (ast.If, ast.While, ast.Assert, ast.IfExp))
        node.test = ast.UnaryOp(op=ast.Not(), operand=node.test)
    elif mutant.kind == "swap-and-or":
        assert isinstance(node, ast.BoolOp)
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif mutant.kind == "swap-bool":
        assert isinstance(node, ast.Constant)
        node.value = not node.value
    elif mutant.kind == "int-plus-one":
        assert isinstance(node, ast.Constant)
        node.value = node.value + 1
    else:
        _replace_with_pass(tree, node)
    ast.fix_missing_locations(tree)
    return ast.unparse(tree) + "\n"


def _replace_with_pass(tree: ast.Module, target: ast.AST) -> None:
    for parent in ast.walk(tree):
        for field in ("body", "orelse", "finalbody", "handlers"):
            block = getattr(parent, field, None)
            if isinstance(block, list) and target in block:
                block[block.index(target)] = ast.copy_location(ast.Pass(), target)
                return
    msg = "statement not found in its parent"
    raise AssertionError(msg)


def tests_by_line(path: Path, tests: list[str]) -> tuple[dict[int, set[str]], dict[str, float]]:
    """
    Run the tests once under coverage with per-test contexts: which tests run each line of
    ``path``, and how long each test took.
    """
    work = Path(tempfile.mkdtemp(prefix="routilux-mutation-"))
    rc = work / "coveragerc"
    rc.write_text(f"[run]\ndynamic_context = test_function\ninclude = {path}\n")
    durations = work / "durations.json"
    plugin = work / "durations_plugin.py"
    plugin.write_text(
        "import json, time\n"
        "_t = {}\n"
        "def pytest_runtest_logreport(report):\n"
        "    if report.when == 'call':\n"
        "        _t[report.nodeid] = report.duration\n"
        "def pytest_sessionfinish(session):\n"
        f"    with open({str(durations)!r}, 'w') as f:\n"
        "        f.write(json.dumps(_t))\n"
    )
    env = dict(os.environ, COVERAGE_FILE=str(work / ".coverage"), PYTHONPATH=str(work))
    cmd = [
        sys.executable,
        "-m",
        "coverage",
        "run",
        f"--rcfile={rc}",
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:randomly",
        "-p",
        "durations_plugin",
        *tests,
    ]
    subprocess.run(cmd, cwd=ROOT, env=env, check=False, stdout=subprocess.DEVNULL)
    from coverage import CoverageData

    data = CoverageData(basename=str(work / ".coverage"))
    data.read()
    by_line: dict[int, set[str]] = defaultdict(set)
    for measured in data.measured_files():
        for line, contexts in data.contexts_by_lineno(measured).items():
            for context in contexts:
                # A line run only when the module was imported (no test context), or by a
                # test known by no node id (hypothesis runs a test's examples through its
                # own ``ConjectureRunner.test_function``), is judged by every test given.
                nodeid = _nodeid(context) if context else None
                by_line[line].update([nodeid] if nodeid else tests)
    took = json.loads(durations.read_text()) if durations.exists() else {}
    shutil.rmtree(work, ignore_errors=True)
    return by_line, took


def _nodeid(context: str) -> str | None:
    # coverage's test_function context is "module.path.Class.test_name"; pytest wants a
    # node id: turn it into "path/to/module.py::Class::test_name". A function defined in
    # another ("module.path.outer.<locals>.test_name", as hypothesis's ``given`` wraps a
    # test) is no node: its module's tests are run. A context outside the tests (hypothesis's
    # own "hypothesis....test_function") gives None. A node id pytest does not find would
    # stop pytest with a usage error, which would count as a kill.
    parts = context.split(".")
    for cut in range(len(parts), 0, -1):
        candidate = ROOT.joinpath(*parts[:cut]).with_suffix(".py")
        if candidate.exists():
            rest = parts[cut:]
            path = str(candidate.relative_to(ROOT))
            return path if "<locals>" in rest else "::".join([path, *rest])
    return None


def run_mutant(
    path: Path, source: str, tests: list[str], limit: float, per_test: float
) -> tuple[str, float, str]:
    """
    Write the mutant, run ``tests`` (stop at the first failure, each test stopped by
    pytest-timeout after ``per_test`` seconds), restore the module. A test stopped by its
    timeout, or a run past ``limit``, makes the mutant ``hung``, not ``killed``.
    """
    original = path.read_text()
    t0 = time.monotonic()
    try:
        path.write_text(source)
        cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:randomly"]
        cmd += [f"--timeout={per_test:g}", *tests]
        try:
            proc = subprocess.run(
                cmd, cwd=ROOT, capture_output=True, text=True, timeout=limit, check=False
            )
        except subprocess.TimeoutExpired:
            return "hung", time.monotonic() - t0, f"no end within {limit:.0f} s"
    finally:
        path.write_text(original)
    seconds = time.monotonic() - t0
    if proc.returncode == 0:
        return "survived", seconds, ""
    if "ERROR: not found:" in proc.stdout + proc.stderr:
        # A node id pytest did not find: no test ran, so nothing was killed.
        msg = f"pytest found no such test: {proc.stdout + proc.stderr}"
        raise RuntimeError(msg)
    if "Timeout (" in proc.stdout + proc.stderr:
        return "hung", seconds, f"a test ran past {per_test:g} s"
    last = [line for line in proc.stdout.splitlines() if line.startswith("FAILED")]
    return "killed", seconds, last[0] if last else f"exit {proc.returncode}"


def _equivalents(path: Path) -> dict[tuple[int, str], str]:
    # Lines "relative/path.py:LINE:KIND  reason" of mutants that cannot change behaviour.
    out: dict[tuple[int, str], str] = {}
    if not EQUIVALENT.exists():
        return out
    rel = str(path.resolve().relative_to(ROOT))
    for line in EQUIVALENT.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        where, _, reason = line.partition("  ")
        file, _, rest = where.partition(":")
        number, _, kind = rest.partition(":")
        if file == rel:
            out[(int(number), kind)] = reason.strip()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("module", type=Path, help="the module file to mutate")
    parser.add_argument("--tests", nargs="+", default=list(DEFAULT_TESTS))
    parser.add_argument("--limit", type=int, default=0, help="at most N mutants (0: all)")
    parser.add_argument("--seed", type=int, default=0, help="sample the mutants with this seed")
    parser.add_argument("--json", type=Path, help="also write the outcomes here")
    parser.add_argument(
        "--test-timeout", type=float, default=15.0, help="seconds one test may run (hung after)"
    )
    args = parser.parse_args(argv)
    path = args.module.resolve()
    backup = path.read_text()
    tree = ast.parse(backup)
    mutants = find_mutants(tree)
    if args.limit and args.limit < len(mutants):
        mutants = sorted(random.Random(args.seed).sample(mutants, args.limit), key=lambda m: m.line)
    equivalent = _equivalents(path)
    print(f"{len(mutants)} mutants of {path.relative_to(ROOT)}; finding the tests of each line")
    print("the module is rewritten in place: run no tests and commit nothing here until the end")
    by_line, took = tests_by_line(path, args.tests)
    outcomes: list[Outcome] = []
    try:
        for number, mutant in enumerate(mutants, 1):
            reason = equivalent.get((mutant.line, mutant.kind))
            tests = sorted(by_line.get(mutant.line, ()))
            if reason is not None:
                outcomes.append(Outcome(mutant, "equivalent", 0.0, 0, reason))
            elif not tests:
                outcomes.append(Outcome(mutant, "uncovered", 0.0, 0))
            else:
                limit = 20.0 + 3 * sum(took.get(t, 1.0) for t in tests)
                source = apply(tree, mutant)
                result, seconds, detail = run_mutant(path, source, tests, limit, args.test_timeout)
                outcomes.append(Outcome(mutant, result, seconds, len(tests), detail))
            last = outcomes[-1]
            print(
                f"[{number}/{len(mutants)}] {last.result:<10} line {mutant.line:<5} "
                f"{mutant.kind:<17} {mutant.what}  {last.detail}",
                flush=True,
            )
    finally:
        path.write_text(backup)
    counts = Counter(o.result for o in outcomes)
    judged = len(outcomes) - counts["equivalent"]
    killed = counts["killed"]
    print()
    print("| module | mutants | killed | hung | survived | uncovered | equivalent | killed % |")
    print("|---|---|---|---|---|---|---|---|")
    share = f"{100 * killed / judged:.0f} %" if judged else "-"
    print(
        f"| {path.relative_to(ROOT)} | {len(outcomes)} | {killed} | {counts['hung']} | "
        f"{counts['survived']} | {counts['uncovered']} | {counts['equivalent']} | {share} |"
    )
    for o in outcomes:
        if o.result in ("survived", "uncovered", "hung"):
            print(f"  {o.result}: line {o.mutant.line} {o.mutant.kind}: {o.mutant.what}")
    if args.json is not None:
        args.json.write_text(json.dumps([attrs.asdict(o) for o in outcomes], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
