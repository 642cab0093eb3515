"""The house rules, read from the source with `ast` (issue 24).

- No import circle anywhere in the package, counting imports inside functions
  and under TYPE_CHECKING: a circle is a circle whenever it is walked.
- The faces (CLI, console, workers, the demo) import the engine only through
  its face, `queuectl_tui.engine`, and only names that face declares.
- The engine imports no face and no Textual; nothing outside the engine
  imports Peewee or a database driver.
- No module in the package is longer than 500 lines.
- No bare state string in the engine outside `engine/states.py`: a state is a
  `State` member or one of its groups. SQL text may spell one inside a longer
  string; a whole string that is a state's name is a breach.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from queuectl_tui.engine.states import State

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "queuectl_tui"
ENGINE = f"{PACKAGE}.engine"
MAX_LINES = 500
STORAGE_LIBRARIES = ("peewee", "playhouse", "psycopg2", "psycopg", "sqlite3")
FACES = (f"{PACKAGE}.cli", f"{PACKAGE}.console", f"{PACKAGE}.workers", f"{PACKAGE}.demo",
         f"{PACKAGE}.web")
STATE_WORDS = frozenset(state.value for state in State)
# Words of another vocabulary that are also a state's name: how a run ended.
OTHER_VOCABULARIES = {(f"{ENGINE}.attempts", "cancelled")}


def modules_of(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package under root."""
    found = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every module `name` imports, wherever the import statement stands."""
    found: set[str] = set()
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                stem = package[: len(package) - node.level + 1]
                base = ".".join(stem + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in modules else base)
    return found


def graph(root: Path) -> tuple[dict[str, Path], dict[str, set[str]]]:
    modules = modules_of(root)
    return modules, {name: imports_of(name, path, modules) for name, path in modules.items()}


def circles(modules: dict[str, Path], edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for start in modules:
        if start in index:
            continue
        work = [(start, iter(sorted(e for e in edges[start] if e in modules)))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        groups.append(sorted(group))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(e for e in edges[child] if e in modules))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return groups


def face_names(root: Path) -> set[str]:
    """The names `queuectl_tui/engine/__init__.py` declares in its `_FACE` table."""
    tree = ast.parse((root / PACKAGE / "engine" / "__init__.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "_FACE":
            return {key.value for key in node.value.keys}  # type: ignore[union-attr]
    return set()


def breaches(root: Path) -> list[str]:
    """Every broken house rule under root, one line each."""
    modules, edges = graph(root)
    face = face_names(root)
    found = [f"circle: {' <-> '.join(group)}" for group in circles(modules, edges)]
    for name, path in modules.items():
        in_engine = name == ENGINE or name.startswith(ENGINE + ".")
        for target in sorted(edges[name]):
            top = target.split(".")[0]
            if in_engine and (target.startswith(FACES) or top == "textual"):
                found.append(f"engine imports a face: {name} -> {target}")
            if not in_engine and top in STORAGE_LIBRARIES:
                found.append(f"storage library outside the engine: {name} -> {target}")
            if not in_engine and target.startswith(ENGINE + "."):
                found.append(f"past the engine's face: {name} -> {target}")
        if not in_engine:
            found += [f"not in the engine's face: {name} -> {used}"
                      for used in sorted(names_taken_from_engine(path) - face)]
        if in_engine and name != f"{ENGINE}.states":
            found += [f"bare state string: {name} -> {word!r}"
                      for word in sorted(bare_state_words(path))
                      if (name, word) not in OTHER_VOCABULARIES]
        lines = len(path.read_text().splitlines())
        if lines > MAX_LINES:
            found.append(f"too long: {name} has {lines} lines")
    return found


def bare_state_words(path: Path) -> set[str]:
    """Whole string constants that are a state's name (not SQL that mentions one)."""
    return {node.value for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Constant) and node.value in STATE_WORDS}


def names_taken_from_engine(path: Path) -> set[str]:
    return {alias.name for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.ImportFrom) and node.module == ENGINE
            for alias in node.names}


def test_the_package_keeps_the_house_rules():
    assert breaches(ROOT) == []


def test_every_face_name_resolves():
    import queuectl_tui.engine as engine

    missing = [name for name in engine.__all__ if not _resolves(engine, name)]
    assert missing == []


def _resolves(module, name: str) -> bool:
    try:
        getattr(module, name)
    except (AttributeError, ImportError):
        return False
    return True


def write(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / PACKAGE / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


CLEAN = {
    "__init__.py": "",
    "engine/__init__.py": '_FACE: dict[str, str] = {"Queue": "queue"}\n',
    "engine/queue.py": "import peewee\nfrom .models import Job\n",
    "engine/models.py": "",
    "cli/__init__.py": "from queuectl_tui.engine import Queue\n",
}


def test_a_clean_tree_passes(tmp_path):
    assert breaches(write(tmp_path, CLEAN)) == []


@pytest.mark.parametrize("files, breach", [
    ({"cli/run.py": "from queuectl_tui.engine.queue import Queue\n"},
     "past the engine's face: queuectl_tui.cli.run -> queuectl_tui.engine.queue"),
    ({"console/x.py": "def f():\n    from queuectl_tui.engine import models\n"},
     "not in the engine's face: queuectl_tui.console.x -> models"),
    ({"workers/w.py": "import peewee as pw\n"},
     "storage library outside the engine: queuectl_tui.workers.w -> peewee"),
    ({"engine/models.py": "from queuectl_tui.console import app\n"},
     "engine imports a face: queuectl_tui.engine.models -> queuectl_tui.console"),
    ({"engine/models.py": "def f():\n    from . import queue\n"},
     "circle: queuectl_tui.engine.models <-> queuectl_tui.engine.queue"),
    ({"cli/big.py": "x = 1\n" * 501},
     "too long: queuectl_tui.cli.big has 501 lines"),
    ({"engine/queue.py": "def done(job):\n    return job.state == 'completed'\n"},
     "bare state string: queuectl_tui.engine.queue -> 'completed'"),
])
def test_each_rule_catches_its_breach(tmp_path, files, breach):
    assert breach in breaches(write(tmp_path, {**CLEAN, **files}))
