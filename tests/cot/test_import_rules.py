"""The layers of docs/architecture.md hold: no upward import (import-linter) and no import circle."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.support.import_cycles import cycles, import_graph

ROOT = Path(__file__).resolve().parents[2]
APPS = ["cot", "tenants", "audit", "devices", "firmware"]


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def test_no_module_level_import_circle() -> None:
    assert cycles(import_graph(ROOT, APPS)) == []


def test_a_circle_at_import_time_is_found_and_deferred_imports_are_not(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/first.py": "from pkg import second\n",
            "pkg/second.py": "import pkg.first\n",
            "pkg/lazy.py": "def later():\n    from pkg import first\n",
            "pkg/typed.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import lazy\n",
            "pkg/sub/__init__.py": "from .leaf import thing\n",
            "pkg/sub/leaf.py": "from pkg import typed\nthing = 1\n",
        },
    )
    graph = import_graph(tmp_path, ["pkg"])
    assert cycles(graph) == [["pkg.first", "pkg.second"]]
    assert graph["pkg.sub"] == {"pkg.sub.leaf"}

    (tmp_path / "pkg/typed.py").write_text("from pkg import sub\n")
    assert cycles(import_graph(tmp_path, ["pkg"])) == [
        ["pkg.first", "pkg.second"],
        ["pkg.sub", "pkg.sub.leaf", "pkg.typed"],
    ]


def test_the_layer_contract_counts_deferred_imports(tmp_path: Path) -> None:
    """The contracts' type is what the project uses; a deferred upward import breaks it."""
    _write(
        tmp_path,
        {
            "low/__init__.py": "",
            "low/core.py": "def later():\n    from high import app\n",
            "high/__init__.py": "",
            "high/app.py": "import low.core\n",
            ".importlinter": """\
                [importlinter]
                root_packages =
                    low
                    high

                [importlinter:contract:layers]
                name = low never imports high
                type = forbidden
                source_modules = low
                forbidden_modules = high
            """,
        },
    )
    lint = Path(sys.executable).with_name("lint-imports")
    run = [str(lint), "--no-cache", "--no-logo", "--config", ".importlinter"]
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}

    def lint_imports() -> subprocess.CompletedProcess[str]:
        return subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True, check=False)  # noqa: S603 (our own venv's tool)

    broken = lint_imports()
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "low.core -> high.app" in broken.stdout

    (tmp_path / "low/core.py").write_text("def later():\n    return None\n")
    kept = lint_imports()
    assert kept.returncode == 0, kept.stdout + kept.stderr
