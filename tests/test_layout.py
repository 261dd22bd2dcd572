"""The layout's rules, read from the code's own imports (docs/architecture.md): nothing imports a script,
the harness imports nothing of the physics, and no two modules import each other in a loop."""
from __future__ import annotations

import ast
from pathlib import Path

from harness.paths import REPO_ROOT

FOLDERS = ("harness", "mean_field_theory", "single_layer", "deep_networks", "benchmarks")


def modules() -> dict[str, Path]:
    found = {path.stem: path for path in REPO_ROOT.glob("*.py")}
    for folder in FOLDERS:
        found.update({f"{folder}.{path.stem}": path for path in (REPO_ROOT / folder).glob("*.py")
                      if path.name != "__init__.py"})
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of this repository that `path` imports (anywhere in the file)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
    return {name for name in names if name in known}


def is_script(path: Path) -> bool:
    return 'if __name__ == "__main__":' in path.read_text(encoding="utf-8")


def test_nothing_imports_a_script():
    """A script (a file with a __main__) is imported by nothing: what two scripts share lives in a library module."""
    known = modules()
    offences = [f"{name} imports {other}" for name, path in known.items()
                for other in imports(path, known) if is_script(known[other])]
    assert not offences, offences


def test_the_harness_imports_nothing_of_the_physics():
    known = modules()
    offences = [f"{name} imports {other}" for name, path in known.items() if name.startswith("harness.")
                for other in imports(path, known) if not other.startswith("harness.")]
    assert not offences, offences


def test_no_import_circle():
    known = modules()
    graph = {name: imports(path, known) - {name} for name, path in known.items()}
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for other in graph[name]:
            assert state.get(other) != 1, f"import circle: {' -> '.join(trail + [name, other])}"
            if other not in state:
                visit(other, trail + [name])
        state[name] = 2

    for name in graph:
        if name not in state:
            visit(name, [])


def test_the_theory_library_imports_nothing_of_the_simulations():
    """The theory's modules (mean_field_theory/, scripts aside) stand on the harness, the field primitives and the
    teacher–student data only: a theory script may compare with SGD, the theory itself never needs it."""
    known = modules()
    offences = [f"{name} imports {other}" for name, path in known.items()
                if name.startswith("mean_field_theory.") and not is_script(path)
                for other in imports(path, known) if other.startswith(("single_layer.", "deep_networks."))]
    assert not offences, offences
