"""The layer maps hold: no module sits in an import cycle, and an upward import fails lint.

`nox -s lint` runs `lint-imports` with the contracts in the root pyproject.toml; these tests
show that the check bites (a copy of the sources with one upward import added breaks the
layers contract and names the import) and count cycles module by module with grimp.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ane_core.skips import require_extra

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"ane_core": "ane-core", "ane_bench": "ane-bench", "whisper_ane": "whisper-ane"}
PACKAGES["bert_ane"] = "bert-ane"


def _modules_in_cycles(package: str) -> list[str]:
    """Every module of ``package`` that imports itself back through other modules."""
    grimp = require_extra("grimp", extra="import-linter", install="pip install import-linter")
    graph = grimp.build_graph(package, include_external_packages=False)
    return sorted(
        module
        for module in graph.modules
        if any(
            graph.find_shortest_chain(importer=imported, imported=module)
            for imported in graph.find_modules_directly_imported_by(module)
        )
    )


@pytest.mark.parametrize("package", list(PACKAGES))
def test_no_module_sits_in_an_import_cycle(package):
    assert _modules_in_cycles(package) == []


def _lint_imports(sources: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` with the repository's contracts over the packages in ``sources``."""
    require_extra("importlinter", extra="import-linter", install="pip install import-linter")
    env = {**os.environ, "PYTHONPATH": str(sources)}  # the copy shadows the installed packages
    script = "from importlinter.cli import lint_imports_command; lint_imports_command()"
    return subprocess.run(
        [sys.executable, "-c", script, "--no-cache", "--config", str(ROOT / "pyproject.toml")],
        env=env,
        cwd=sources,
        capture_output=True,
        text=True,
    )


@pytest.fixture
def sources(tmp_path) -> Path:
    for module, directory in PACKAGES.items():
        shutil.copytree(ROOT / "packages" / directory / "src" / module, tmp_path / module)
    return tmp_path


def test_the_contracts_hold(sources):
    result = _lint_imports(sources)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "upward", "contract"),
    [
        ("ane_core/datatypes.py", "ane_core.export", "ane-core layers"),
        ("whisper_ane/model/decoder.py", "whisper_ane.runtime.decoding", "whisper-ane layers"),
        ("ane_core/metrics.py", "ane_bench.cli", "ane-core knows no CLI and no model plugin"),
    ],
)
def test_one_upward_import_breaks_lint_and_is_named(sources, module, upward, contract):
    with (sources / module).open("a") as file:
        file.write(f"\nimport {upward}  # an upward import\n")
    result = _lint_imports(sources)
    assert result.returncode == 1
    assert f"{contract} BROKEN" in result.stdout
    importer = module.removesuffix(".py").replace("/", ".")
    assert f"{importer} -> {upward}" in result.stdout
