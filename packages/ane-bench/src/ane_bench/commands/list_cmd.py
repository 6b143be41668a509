"""``ane list`` and ``ane plugins``: what is installed, and what failed to load."""

from __future__ import annotations

import json

import click
from ane_core.plugins import collect_architectures, plugin_infos


def _listing() -> dict:
    registry = collect_architectures()
    plugins = plugin_infos()
    return {
        "plugins": [vars(info) for info in plugins],
        "architectures": [arch.describe() for arch in registry.architectures.values()],
        "problems": registry.problems
        + [f"plugin {p.name} failed to load: {p.error}" for p in plugins if p.error],
    }


@click.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def list_command(as_json: bool) -> None:
    """List plugins, architectures, sizes and components."""
    listing = _listing()
    if as_json:
        click.echo(json.dumps(listing, indent=2))
        return
    click.echo("Plugins:")
    if not listing["plugins"]:
        click.echo("  (none installed)")
    for info in listing["plugins"]:
        state = f"error: {info['error']}" if info["error"] else "ok"
        click.echo(f"  {info['name']} {info['version'] or ''} ({info['module']}) {state}")
    click.echo("Architectures:")
    if not listing["architectures"]:
        click.echo("  (no architectures: install a plugin such as whisper-ane)")
    for arch in listing["architectures"]:
        click.echo(f"  {arch['name']}: {arch['description']}")
        click.echo(f"    sizes: {', '.join(arch['sizes']) or '(from the checkpoint)'}")
        click.echo(f"    components: {', '.join(arch['components'])}")
        click.echo(f"    variants: {', '.join(arch['variants'])}")
        stateful = [
            f"{c} ({v})" for v, cs in arch.get("stateful_components", {}).items() for c in cs
        ]
        if stateful:
            click.echo(f"    --stateful: {', '.join(stateful)}")
        for option in arch.get("build_options", []):
            click.echo(f"    {option['flag']} (default {option['default']}): {option['help']}")
        layouts = arch.get("layouts", [])
        if layouts:
            click.echo("    --layout (default native):")
        for layout in layouts:
            precisions = "/".join(layout["precisions"])
            note = f"; {layout['precision_note']}" if layout["precision_note"] else ""
            click.echo(f"      {layout['name']}: {layout['description']} ({precisions}{note})")
    for problem in listing["problems"]:
        click.echo(f"Problem: {problem}", err=True)


@click.command("plugins")
def plugins_command() -> None:
    """Show installed plugins with their versions and the hooks they implement."""
    click.echo(json.dumps([vars(info) for info in plugin_infos()], indent=2))
