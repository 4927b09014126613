"""The house rules that a reader of the code can check by its shape: no product function over 120
lines, no constructor that writes files, no function on the scoring path with more than 8
parameters, imports of the kit's own modules at the top of a module unless one keeps a heavy library
off the ``--help`` path (then it says so), and a ``--help`` that imports neither torch nor transformers."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from tests.conftest import REPO

MAX_LINES = 120
MAX_PARAMS = 8
# The scoring path: from `eval_export score` to the model call.
SCORING_PATH = ("eval_export/scoring.py", "eval_export/zero_shot.py", "eval_export/tasks.py",
                "eval_export/global_piqa.py", "eval_export/aoa.py")
PRODUCT = ("babylm", "eval_export")
OWN = {"babylm", "eval_export"}
# Calls that create, change or remove files; a constructor may only remember paths.
WRITES = {"open", "mkdir", "write_text", "write_bytes", "write_json", "rmtree", "unlink", "touch", "save",
          "acquire", "makedirs", "replace", "rename"}


def _functions(package: str):
    for path in sorted((REPO / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield path.relative_to(REPO), node


def test_no_product_function_is_over_120_lines():
    long = [f"{path}:{fn.lineno} {fn.name} ({fn.end_lineno - fn.lineno + 1} lines)"
            for package in PRODUCT for path, fn in _functions(package) if fn.end_lineno - fn.lineno + 1 > MAX_LINES]
    assert long == [], "over 120 lines: " + "; ".join(long)


def test_no_function_on_the_scoring_path_takes_more_than_8_parameters():
    wide = []
    for path, fn in (f for package in PRODUCT for f in _functions(package)):
        if str(path) not in SCORING_PATH:
            continue
        a = fn.args
        n = len(a.posonlyargs) + len(a.args) + len(a.kwonlyargs) - (a.args[:1] and a.args[0].arg in ("self", "cls"))
        if n > MAX_PARAMS:
            wide.append(f"{path}:{fn.lineno} {fn.name} ({n} parameters)")
    assert wide == [], "over 8 parameters: " + "; ".join(wide)


def test_no_constructor_writes_files():
    writers = []
    for path, fn in (f for package in PRODUCT for f in _functions(package)):
        if fn.name != "__init__":
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
                if name in WRITES:
                    writers.append(f"{path}:{node.lineno} {name}()")
    assert writers == [], "constructors that write: " + "; ".join(writers)


def test_own_modules_are_imported_at_the_top_unless_a_comment_says_why():
    """A function-local import of the kit's own modules keeps torch or transformers off the
    ``--help`` path, and says so on its line (a comment naming the heavy library or --help)."""
    bare = []
    for path, fn in (f for package in PRODUCT for f in _functions(package)):
        lines = (REPO / path).read_text(encoding="utf-8").splitlines()
        for node in ast.walk(fn):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in OWN:
                said = lines[node.lineno - 1] + (lines[node.lineno - 2] if node.lineno > 1 else "")
                if not any(word in said for word in ("torch", "transformers", "--help")):
                    bare.append(f"{path}:{node.lineno} from {node.module}")
    assert bare == [], "function-local imports of the kit's own modules without a reason: " + "; ".join(bare)


@pytest.mark.parametrize("module,command", [("babylm", "train"), ("eval_export", "score")])
def test_help_imports_neither_torch_nor_transformers(module, command):
    """What keeps `--help` fast (under a second): the heavy libraries are imported only by a command that runs."""
    probe = ("import runpy, sys\n"
             f"sys.argv = ['{module}', '{command}', '--help']\n"
             "try:\n"
             f"    runpy.run_module('{module}', run_name='__main__')\n"
             "except SystemExit:\n"
             "    pass\n"
             "print('LOADED', sorted(m for m in ('torch', 'transformers', 'datasets') if m in sys.modules))\n")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert f"--{'tasks' if module == 'eval_export' else 'corpus'}" in proc.stdout, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "LOADED []", proc.stdout[-300:]


def test_every_module_has_its_place_in_the_readme_tree():
    """The README draws the layout (stages in pipeline order, the house apart, the task families and the
    submission side of eval_export): a module it does not name is a module a reader cannot place."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    tree = readme[readme.index("## What is inside"):readme.index("## Install")]
    unnamed = [str(p.relative_to(REPO)) for package in PRODUCT for p in sorted((REPO / package).glob("*.py"))
               if not p.name.startswith("__") and p.name not in tree]
    assert unnamed == [], "modules the README tree does not name: " + ", ".join(unnamed)
