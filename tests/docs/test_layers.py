"""The package's layers (docs/design.md) have one direction: a module imports only from its own
layer or the layers below it, lazy imports inside functions included."""
import ast
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "solo_semppl"
# bottom to top; the root package's register() binds the methods, so it sits with them
LAYERS = [
    ("io",),
    ("losses", "semantic", "step", "options", "nonfinite", "lars", "seeding"),
    ("backbones", "zoo"),
    ("data",),
    ("methods", "__init__"),
    ("training",),
    ("eval",),
    ("experiments",),
    ("cli", "hydra_callback"),
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def layer_of(parts):
    """The layer name of a module path inside the package (``('data', 'split')`` -> 'data')."""
    return parts[0] if parts else "__init__"


def imports_of(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("solo_semppl"):
            yield node.module, node.lineno
        elif isinstance(node, ast.Import):
            yield from ((a.name, node.lineno) for a in node.names if a.name.startswith("solo_semppl"))


def test_every_module_imports_downwards_only():
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        own = layer_of(parts)
        assert own in RANK, f"{path}: package {own!r} is in no layer of docs/design.md"
        for module, line in imports_of(path):
            target = layer_of(module.split(".")[1:])
            if RANK[target] > RANK[own]:
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line} ({own}) imports {module} ({target})")
    assert not bad, "imports against the layers:\n" + "\n".join(bad)


def test_the_layers_are_the_ones_docs_design_md_describes():
    text = (PACKAGE.parent / "docs" / "design.md").read_text()
    for names in LAYERS:
        for name in names:
            shown = "solo_semppl/__init__.py" if name == "__init__" else name
            assert f"`{shown}" in text, f"docs/design.md does not place {shown!r} in a layer"
