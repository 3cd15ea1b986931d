"""The house plan, checked from the source: no module takes another's private names, the global RNG is seeded only
in seed.py, the CLI starts no process group itself, and import-linter's contracts hold (layers, no import
cycles)."""
import ast
from pathlib import Path

import knowwhen

ROOT = Path(knowwhen.__file__).parent


def _modules() -> dict[str, Path]:
    out = {}
    for p in ROOT.rglob("*.py"):
        parts = p.relative_to(ROOT.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


MODULES = _modules()


def _target(module: str, node: ast.ImportFrom) -> str:
    package = module if MODULES[module].name == "__init__.py" else module.rsplit(".", 1)[0]
    if not node.level:
        return node.module or ""
    base = package.split(".")[: len(package.split(".")) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str, top_level_only: bool):
    """(imported module, name) for every `from X import name` inside knowwhen."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and _target(module, node).startswith("knowwhen"):
            for alias in node.names:
                full = f"{_target(module, node)}.{alias.name}"
                yield (full if full in MODULES else _target(module, node)), alias.name


def test_no_module_imports_another_modules_private_names():
    private = [f"{m} takes {name} from {dst}" for m in MODULES for dst, name in _imports(m, False)
               if name.startswith("_") and not name.startswith("__") and dst in MODULES and dst != m]
    assert private == []


def _calls(module: str) -> set[str]:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    return {ast.unparse(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}


def test_only_the_seeding_helper_seeds_the_global_generators():
    global_seeding = {"torch.manual_seed", "np.random.seed", "random.seed", "torch.set_rng_state"}
    found = {m: _calls(m) & global_seeding for m in MODULES}
    allowed = {"knowwhen.seed", "knowwhen.training.module"}  # the module restores the saved state on --resume
    assert {m: c for m, c in found.items() if c and m not in allowed} == {}


def test_the_cli_is_thin_about_processes():
    for m, p in MODULES.items():
        if m.startswith("knowwhen.cli"):
            text = p.read_text(encoding="utf-8")
            assert "torch.distributed" not in text and "init_process_group" not in text, m


def test_the_import_contracts_hold():
    """import-linter checks the contracts declared in pyproject.toml ([tool.importlinter]), every import counted
    (type-only and lazy ones too): the layers (every import points down; the tasks, classify and forecast, never
    import the report, and neither task the other) and no cycle among the modules of any one package."""
    import shutil
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    tool = Path(sys.executable).with_name("lint-imports")
    r = subprocess.run([str(tool if tool.exists() else shutil.which("lint-imports"))], cwd=root, capture_output=True,
                       text=True)
    assert r.returncode == 0 and "2 kept, 0 broken" in r.stdout, r.stdout[-3000:]
