"""
The test files docs/testing.md shows (docs/testing/test_*.py) pass when pytest runs them as
a user's suite, with the kit's plugin loaded from its entry point.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "testing"
PAGE = ROOT / "docs" / "testing.md"


def test_every_test_file_is_shown() -> None:
    """Each test file of docs/testing/ is included in the page, and each include exists."""
    shown = set(re.findall(r"```\{literalinclude\} testing/(\S+\.py)", PAGE.read_text("utf-8")))
    files = {path.name for path in EXAMPLES.glob("test_*.py")}
    assert files, "docs/testing/ has test files"
    assert shown == files


def test_the_pages_tests_pass(tmp_path: Path) -> None:
    """pytest runs the page's test files: every test passes, none is skipped."""
    files = sorted(str(path) for path in EXAMPLES.glob("test_*.py"))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:randomly",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            *files,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert 0 == proc.returncode, proc.stdout + proc.stderr
    (summary,) = [line for line in proc.stdout.splitlines() if " passed" in line]
    assert re.fullmatch(r"\d+ passed in .*", summary), summary
