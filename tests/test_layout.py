"""The package's layout, read from its import graph: no circles, no import from a higher room into
a lower one, no private name taken across rooms, modules of a readable size.

A room is a sub-package (``capture``, ``speech``, ...) or a top-level module. Every import counts,
the ones inside functions too: a lazy import is still a dependency, and a circle of them is still
a circle a newcomer has to untangle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "a11y_caption"

# The rooms in the order data flows, lowest first: a room may import from lower ranks, never higher.
# Within one rank the shared words (ranks 0 and 1) may use each other; other rooms only as SIDEWAYS
# lists (one way).
RANKS = {
    # shared words and facts: what an error, a safe text, an action, a setting, an image is
    "errors": 0, "safe_text": 0, "session": 0, "memory": 0, "hotkeys": 0, "launcher": 0, "actions": 0,
    "images": 1, "config": 1, "models": 1,
    # the engines, each behind one small interface
    "captioner": 2, "speech": 2, "capture": 2,
    # what is made of them
    "describe": 3, "desktop": 3,
    "agent": 4, "index": 4,
    "bench": 5,
    "cli": 6,
    "__main__": 7,
}
SIDEWAYS = {("index", "agent")}  # the index sends its images through the running agent's endpoint
LOWER_ROOMS = ("capture", "captioner", "speech")
HIGHER_ROOMS = ("agent", "cli", "describe", "desktop", "index", "bench")
MAX_TOP_LEVEL = 12
MAX_LINES = 400
# Exceptions, each a ceiling that may only shrink: the lists only get shorter.
KNOWN_CIRCLES: list[list[str]] = []
KNOWN_PRIVATE: set[str] = set()
LONG_MODULES: dict[str, int] = {}  # module: lines today, as a ceiling


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if _is_package(module) else module.split(".")[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str) -> list[tuple[str, str | None]]:
    """(the package module imported, the name taken from it or None) for every import."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, None) for a in node.names if a.name.startswith("a11y_caption")]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node)
            if not target.startswith("a11y_caption"):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.append((sub, None) if sub in MODULES else (target, alias.name))
    return [(t, n) for t, n in found if t in MODULES and t != module]


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


GRAPH = {m: _imports(m) for m in MODULES}


def _edges():
    for module, imports in GRAPH.items():
        for target, name in imports:
            yield module, target, name


def _cycles() -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    succ = {m: sorted({t for t, _ in GRAPH[m]}) for m in GRAPH}

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in succ[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(succ):
        if v not in index:
            visit(v)
    return out


def test_no_module_imports_itself_in_a_circle():
    assert [c for c in _cycles() if c not in KNOWN_CIRCLES] == []


def test_every_room_has_a_rank():
    rooms = {room(m) for m in MODULES} - {"__init__"}
    assert sorted(rooms - RANKS.keys()) == [], "a new room: give it a rank in RANKS"


def test_no_room_imports_a_higher_one():
    wrong = []
    for module, target, _ in _edges():
        a, b = room(module), room(target)
        if a == b or "__init__" in (a, b):
            continue
        if RANKS[b] > RANKS[a] or (RANKS[b] == RANKS[a] > 1 and (a, b) not in SIDEWAYS):
            wrong.append(f"{module} -> {target}")
    assert wrong == []


def test_the_engines_import_nothing_that_uses_them():
    wrong = [f"{m} -> {t}" for m, t, _ in _edges() if room(m) in LOWER_ROOMS and room(t) in HIGHER_ROOMS]
    assert wrong == []


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def test_no_private_name_is_taken_from_another_room():
    wrong = {f"{m} takes {n} from {t}" for m, t, n in _edges()
             if room(m) != room(t) and (_private(t.rsplit(".", 1)[-1]) or (n and _private(n)))}
    assert sorted(wrong - KNOWN_PRIVATE) == []


def test_no_private_attribute_of_another_rooms_module_is_used():
    """``quantize._int8_linear`` after ``from .captioner import quantize`` is a private name too."""
    wrong = []
    for module in MODULES:
        aliases = {}
        tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                target = _resolve(module, node)
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    if sub in MODULES and room(sub) != room(module):
                        aliases[alias.asname or alias.name] = sub
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in aliases and _private(node.attr)):
                wrong.append(f"{module} uses {aliases[node.value.id]}.{node.attr}")
    assert wrong == []


def test_about_a_dozen_top_level_modules():
    top = sorted(m for m in MODULES if m.count(".") == 1 and not _is_package(m))
    assert len(top) <= MAX_TOP_LEVEL, top


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_is_longer_than_a_reader_holds(module):
    lines = len(MODULES[module].read_text(encoding="utf-8").splitlines())
    where = str(MODULES[module].relative_to(PACKAGE.parent))
    assert lines <= LONG_MODULES.get(where, MAX_LINES), f"{where}: {lines} lines"


def test_the_layout_test_sees_a_circle_and_a_private_name(monkeypatch):
    """The checks above can fail: a made-up circle and a private import are found."""
    fake = dict(GRAPH)
    fake["a11y_caption.errors"] = [*GRAPH["a11y_caption.errors"], ("a11y_caption.cli", "_main")]
    monkeypatch.setitem(globals(), "GRAPH", fake)
    assert any("a11y_caption.errors" in c for c in _cycles())
    with pytest.raises(AssertionError):
        test_no_room_imports_a_higher_one()
    with pytest.raises(AssertionError):
        test_no_private_name_is_taken_from_another_room()
