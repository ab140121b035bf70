"""README's bad input catalogue: every row cites tests that exist (pytest node ids whose
function is defined in the cited file). The NaN / inf row cites a file written on another branch:
the only citation allowed to be a bare file, and to be absent."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PENDING = "tests/test_nonfinite.py"


def catalogue_rows():
    section = (ROOT / "README.md").read_text().split("\n## Bad input catalogue\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")][2:]  # header, separator
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]


def test_every_catalogue_row_cites_existing_tests():
    rows = catalogue_rows()
    assert len(rows) >= 30 and all(len(row) == 3 for row in rows), rows
    for what, _, tests in rows:
        cited = re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?`", tests)
        assert cited, f"row {what!r} cites no test"
        for path, name in cited:
            if not name:
                assert path == PENDING, f"row {what!r}: {path} is a file, not a test id (path.py::test_name)"
                continue
            source = (ROOT / path).read_text() if (ROOT / path).is_file() else ""
            assert re.search(rf"^def {name}\(", source, flags=re.M), f"row {what!r}: {path}::{name} does not exist"


def test_the_nan_row_is_there_and_its_file_if_present_holds_tests():
    (row,) = [row for row in catalogue_rows() if row[0] == "NaN or inf loss"]
    assert row[2] == f"`{PENDING}`"
    if (ROOT / PENDING).is_file():
        assert re.search(r"^def test_", (ROOT / PENDING).read_text(), flags=re.M)
