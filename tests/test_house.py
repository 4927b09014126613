"""The house rules that a reader of the code can check by its shape: no product function over 120
lines, no constructor that writes files, and imports of the kit's own modules at the top of a
module unless one keeps a heavy library off the ``--help`` path (then it says so)."""

from __future__ import annotations

import ast

from tests.conftest import REPO

MAX_LINES = 120
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


def test_no_constructor_of_the_training_side_writes_files():
    writers = []
    for path, fn in _functions("babylm"):
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
    for path, fn in _functions("babylm"):
        lines = (REPO / path).read_text(encoding="utf-8").splitlines()
        for node in ast.walk(fn):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in OWN:
                said = lines[node.lineno - 1] + (lines[node.lineno - 2] if node.lineno > 1 else "")
                if not any(word in said for word in ("torch", "transformers", "--help")):
                    bare.append(f"{path}:{node.lineno} from {node.module}")
    assert bare == [], "function-local imports of the kit's own modules without a reason: " + "; ".join(bare)
