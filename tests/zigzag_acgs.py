"""The ZigZag-derived ACGs with one of their two array capabilities: `mac` streams the output
pixels and accumulates in the array, `mac_os` keeps the outputs in the per-PE registers."""

from __future__ import annotations

from mapper.spec.acg import ACG, parse_acg
from mapper.spec.loader import PROJECT_ROOT, load_yaml_text


def with_mac(text: str, keep: str) -> ACG:
    """The ACG of `text` (an imported or shipped ZigZag ACG) with array capability `keep` alone."""
    drop = {"mac": "mac_os", "mac_os": "mac"}[keep]
    lines = [line for line in text.splitlines() if f"{{name: {drop}," not in line]
    return parse_acg(load_yaml_text("\n".join(lines), f"{keep}.yaml"))


def shipped_with_mac(name: str, keep: str) -> ACG:
    return with_mac((PROJECT_ROOT / "acg_specs" / f"{name}.yaml").read_text(), keep)
