"""The shape of the code: lines per module, the longest functions and the
widest signatures (parameters of a def, self and cls not counted).

    python benchmarks/code_shape.py [ROOT] [--top 5]

ROOT is a checkout (default: this one); its pixzip/ and cli/ are read.
"""
from __future__ import annotations

import argparse
import ast
from pathlib import Path


def functions(root: Path):
    """(path, name, lines, parameters) of every def under pixzip/ and cli/."""
    for folder in ("pixzip", "cli"):
        for path in sorted((root / folder).rglob("*.py")):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    a = node.args
                    names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs]
                    names += [x.arg for x in (a.vararg, a.kwarg) if x is not None]
                    n = len([x for x in names if x not in ("self", "cls")])
                    yield path.relative_to(root), node.name, node.end_lineno - node.lineno + 1, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", nargs="?", default=str(Path(__file__).resolve().parent.parent))
    ap.add_argument("--top", type=int, default=5)
    args = ap.parse_args()
    root = Path(args.root)
    found = list(functions(root))
    modules = sorted(((p.relative_to(root), len(p.read_text().splitlines())) for f in ("pixzip", "cli")
                      for p in (root / f).rglob("*.py")), key=lambda m: -m[1])
    print(f"{'module':48} lines")
    for path, n in modules[:args.top]:
        print(f"{str(path):48} {n}")
    print(f"\n{'longest functions':48} lines")
    for path, name, n, _ in sorted(found, key=lambda f: -f[2])[:args.top]:
        print(f"{f'{path}:{name}':48} {n}")
    print(f"\n{'widest signatures':48} parameters")
    for path, name, _, n in sorted(found, key=lambda f: -f[3])[:args.top]:
        print(f"{f'{path}:{name}':48} {n}")


if __name__ == "__main__":
    main()
