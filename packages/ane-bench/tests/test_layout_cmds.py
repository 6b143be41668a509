"""``--layout`` in ``ane list``, ``ane export``, ``ane parity`` and ``ane transcribe``, on the
toy plugin's layouts (``flat``: one float32-I/O package; ``bundle``: a folder of two packages
and a ``config.json``, FP16 only). The CLI only passes the layout on; ane-core and the
plugin do the work."""

from __future__ import annotations

import json
import os

import pytest
from ane_core import hookimpl, plugins
from ane_core.testing import ToyArchitecture, ToyPlugin
from click.testing import CliRunner

from ane_bench.cli import cli


@pytest.fixture
def toy():
    plugins.register_plugin(ToyPlugin(), name="toy-layouts")
    yield
    plugins.unregister_plugin("toy-layouts")


def _run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _one_line_error(result, message):
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.output


def test_list_shows_the_layouts(toy):
    text = _run("list")
    assert text.exit_code == 0
    assert "--layout (default native):" in text.output
    assert "flat: one sequence-first package" in text.output
    listing = json.loads(_run("list", "--json").output)
    toy_arch = next(a for a in listing["architectures"] if a["name"] == "toy")
    assert [layout["name"] for layout in toy_arch["layouts"]] == ["native", "flat", "bundle"]
    assert toy_arch["layouts"][2]["precisions"] == ["fp16"]


def test_export_flat_writes_one_package_and_says_how_to_compile(toy, tmp_path, monkeypatch):
    monkeypatch.setattr("ane_core.layout_export.can_compile", lambda: False)  # as off a Mac
    result = _run("export", "toy", "--layout", "flat", "-o", tmp_path)
    assert result.exit_code == 0, result.output
    package = tmp_path / "toy-small-flat.mlpackage"
    assert os.listdir(tmp_path) == [package.name]
    assert f"{package}  (" in result.output and "2 cast" in result.output
    assert "Compile on a Mac" in result.output
    assert f"xcrun coremlcompiler compile {package} {tmp_path}" in result.output


def test_export_bundle_with_a_name_writes_the_folder(toy, tmp_path):
    result = _run("export", "toy", "--layout", "bundle", "--name", "mine", "-o", tmp_path)
    assert result.exit_code == 0, result.output
    assert os.listdir(tmp_path) == ["mine"]
    assert sorted(os.listdir(tmp_path / "mine")) == ["Ane.mlpackage", "config.json", "models"]
    assert "note: mine: toy bundle" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--layout", "nope"], "toy has no --layout 'nope'. Use one of: native, flat, bundle."),
        (
            ["--layout", "bundle", "--precision", "fp32"],
            "--layout bundle does not take --precision fp32",
        ),
        (
            ["--layout", "flat", "--component", "encoder"],
            "--component encoder applies to the native",
        ),
        (["--layout", "flat", "--arch", "stock"], "--arch stock applies to the native"),
        (["--layout", "flat", "--compress", "int8"], "--compress int8 applies to the native"),
        (["--name", "mine"], "--name names a layout's files"),
    ],
)
def test_export_refuses_what_a_layout_cannot_do_in_one_line(toy, tmp_path, args, message):
    result = _run("export", "toy", *args, "-o", tmp_path)
    _one_line_error(result, message)
    assert os.listdir(tmp_path) == []


def test_export_layout_refuses_to_overwrite_before_loading_weights(toy, tmp_path, monkeypatch):
    (tmp_path / "toy-small").mkdir()
    arch = plugins.get_architecture("toy")
    monkeypatch.setattr(type(arch), "load_weights", lambda *a, **k: pytest.fail("loaded"))
    result = _run("export", "toy", "--layout", "bundle", "-o", tmp_path)
    _one_line_error(result, "already exists")


def test_parity_checks_every_package_of_the_layout(toy, tmp_path):
    report = tmp_path / "parity.json"
    result = _run("parity", "toy", "--layout", "bundle", "--json", report, "--quiet")
    assert result.exit_code == 0, result.output
    rows = json.loads(report.read_text())
    assert rows["layout"] == "bundle" and rows["passed"]
    assert {(r["component"], r["model"], r["precision"]) for r in rows["rows"]} == {
        ("Ane", "ane-pytorch", "fp32"),
        ("Stock", "ane-pytorch", "fp32"),
        ("Ane", "package-mil", "fp16"),
        ("Stock", "package-mil", "fp16"),
    }


def test_parity_of_a_layout_refuses_a_component(toy):
    result = _run("parity", "toy", "--layout", "flat", "--component", "encoder")
    _one_line_error(result, "--component applies to the native layout only")


class LayoutEcho(ToyArchitecture):
    """A toy whose 'transcript' says which layout and precision the CLI passed."""

    name = "toy-echo"
    transcribe_backends = ("echo",)

    def transcriber(self, weights, *, backend, precision, build_options=None, **layout):
        value = precision.value if precision else "fp32"  # the toy's native default

        def run(path, *, language, task, without_timestamps, **options):
            text = f"{layout.get('layout', 'no layout passed')} {value}"
            return {"audio": str(path), "language": language, "text": text, "segments": []}

        return run


class EchoPlugin:
    @hookimpl
    def register_architectures(self, register):
        register(LayoutEcho())


@pytest.fixture
def echo(tmp_path):
    plugins.register_plugin(EchoPlugin(), name="toy-echo")
    sound = tmp_path / "a.wav"
    sound.write_bytes(b"x")
    yield sound
    plugins.unregister_plugin("toy-echo")


@pytest.mark.parametrize(
    ("args", "text"),
    [
        ([], "no layout passed fp32"),  # native: the transcriber's call is unchanged
        (["--layout", "bundle"], "bundle fp16"),  # the layout's default precision
        (["--layout", "flat", "--precision", "fp32"], "flat fp32"),
    ],
)
def test_transcribe_passes_the_layout_on(echo, args, text):
    result = _run("transcribe", "toy-echo", echo, "--backend", "echo", *args)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == text


def test_transcribe_refuses_an_unknown_layout(echo):
    result = _run("transcribe", "toy-echo", echo, "--backend", "echo", "--layout", "nope")
    _one_line_error(result, "no --layout 'nope'")


def test_transcribe_with_a_layout_refuses_whisper_s_decoding_options(echo):
    """An app layout decodes as the app does; options it cannot honour are one line."""
    args = ("transcribe", "toy-echo", echo, "--backend", "echo", "--layout", "flat")
    result = _run(*args, "--word-timestamps", "--temperature", "0.4")
    _one_line_error(result, "takes no --word-timestamps, --temperature")
