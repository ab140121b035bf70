"""The bad input catalogue (docs/bad-input.md): every row cites tests that exist (pytest node ids whose
function is defined in the cited file)."""
import re

from conftest import REPO

ROOT = REPO


def catalogue_rows():
    section = (ROOT / "docs" / "bad-input.md").read_text().split("\n## Bad input catalogue\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")][2:]  # header, separator
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]


def test_every_catalogue_row_cites_existing_tests():
    rows = catalogue_rows()
    assert len(rows) >= 30 and all(len(row) == 3 for row in rows), rows
    for what, _, tests in rows:
        cited = re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?`", tests)
        assert cited, f"row {what!r} cites no test"
        for path, name in cited:
            assert name, f"row {what!r}: {path} is a file, not a test id (path.py::test_name)"
            source = (ROOT / path).read_text() if (ROOT / path).is_file() else ""
            assert re.search(rf"^def {name}\(", source, flags=re.M), f"row {what!r}: {path}::{name} does not exist"

