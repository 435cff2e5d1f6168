"""A regular (non-editable) wheel carries the shipped specs: installed into a fresh virtual
environment, `covenant` finds ACGs, workloads and experiments (with their expert mappings) from any
folder, through the installed package, not through this source tree."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from mapper.spec.loader import PROJECT_ROOT

SOURCES = ("pyproject.toml", "README.md", "mapper", "solver", "sim", "acg_specs", "workloads", "experiments")


def _can_build_wheels() -> bool:
    try:
        import setuptools.command.bdist_wheel  # noqa: F401 - setuptools >= 70.1 builds wheels itself
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not _can_build_wheels(), reason="needs setuptools >= 70.1 (the [test] extra) to build a "
                    "wheel without build isolation, i.e. without the network")
def test_wheel_install_finds_the_shipped_specs(tmp_path: Path) -> None:
    source = tmp_path / "src"  # a copy: building writes build/ and *.egg-info next to the sources
    source.mkdir()
    for name in SOURCES:
        src = PROJECT_ROOT / name
        if src.is_dir():
            shutil.copytree(src, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, source / name)
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    subprocess.run([*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(wheels),
                    str(source)], check=True, capture_output=True)
    (wheel,) = wheels.glob("covenant-*.whl")

    # A fresh environment without system site-packages; the wheel goes in without dependencies, which
    # are borrowed read-only from this environment by a .pth line placed after the wheel's own files
    # (no network; this environment's editable covenant is not activated there: .pth files are read
    # only in site-packages folders, not in folders a .pth line adds).
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([*pip, "--python", str(python), "install", "-q", "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True)
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    (Path(site) / "zz_borrowed_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the wheel's covenant, not a checkout's

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(args, cwd=elsewhere, capture_output=True, text=True, check=False, env=env)

    proc = run(str(venv / "bin" / "covenant"), "show", "acg", "genesys", "--json")
    assert proc.returncode == 0, proc.stderr
    assert f'"source": "{site}/covenant_specs/acg_specs/genesys.yaml"' in proc.stdout
    proc = run(str(python), "-c", "import mapper, json; from mapper.spec.workload import load_workload; "
               "from mapper.app.experiment import load_experiment; e = load_experiment('covenant_table_quick'); "
               "print(json.dumps([mapper.__file__, load_workload('resnet50').source, "
               "sum(t is not None for _, _, t in e.experts)]))")
    assert proc.returncode == 0, proc.stderr
    module, workload, experts = __import__("json").loads(proc.stdout)
    assert module == f"{site}/mapper/__init__.py"
    assert workload == f"{site}/covenant_specs/workloads/resnet50.yaml"
    assert experts > 0  # expert mappings are found next to the installed experiment
