"""Outputs of every command (`compile -o`, `import -o`, `import zigzag -o`, `show --png`, `map -o`):
checked before the work starts, and any OS error while writing is one line with exit status 2, never
a traceback, never a temporary file left behind (`mapper/spec/files.py`: `check_output`, `atomic_write`)."""

from __future__ import annotations

import errno
import os
import sqlite3
import sys
from pathlib import Path

import pytest

from mapper.app.cli import main
from mapper.spec.loader import PROJECT_ROOT

ONNX = str(PROJECT_ROOT / "workloads" / "tiny_cnn.onnx")
ZIGZAG = str(PROJECT_ROOT / "tests" / "data" / "zigzag" / "hardware" / "tpu_like.yaml")
COMMANDS = {  # command -> (argv before the output path, the flag, what it does before writing)
    "compile": (["compile", "--acg", "tiny", "--workload", "tiny_net", "--fuse", "none", "--no-validate", "-o"],
                "mapper.app.cli_network.compile_network"),
    "import onnx": (["import", ONNX, "-o"], "mapper.app.cli_network.import_onnx_yaml"),
    "import zigzag": (["import", "zigzag", ZIGZAG, "-o"], "mapper.app.cli_network.import_zigzag"),
    "show --png": (["show", "acg", "tiny", "--png"], "mapper.app.cli.draw_acg"),
    "map": (["map", "--acg", "tiny", "--workload", "tiny_net", "--layer", "fc", "--no-validate", "-o"],
            "mapper.app.cli.map_layers"),
}


def _one_line_error(capsys, *expected: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith("covenant: error: ") and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and all(text in err for text in expected), err
    return err


def _bad_outputs(tmp_path: Path) -> dict[str, tuple[str, str]]:
    """Output paths that cannot be written, each with what the error must say."""
    a_file = tmp_path / "a_file"
    a_file.write_text("keep me\n")
    return {"under a file": (str(a_file / "sub"), "is not a folder"),
            "missing folder": (str(tmp_path / "no" / "such" / "x"), "the folder does not exist"),
            "proc": ("/proc/covenant-out", "cannot create files in /proc"),
            "name too long": (str(tmp_path / ("x" * 300)), "File name too long")}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc: a folder nobody may create files in")
@pytest.mark.parametrize("command", COMMANDS)
def test_unwritable_outputs_are_refused_before_the_work(command, tmp_path, capsys, monkeypatch) -> None:
    argv, work = COMMANDS[command]
    monkeypatch.setattr(work, lambda *a, **k: pytest.fail(f"{command}: worked before refusing its output"))
    for path, message in _bad_outputs(tmp_path).values():
        assert main([*argv, path]) == 2, path
        _one_line_error(capsys, path if len(path) < 100 else "", message)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]  # nothing created, no probe left
    assert (tmp_path / "a_file").read_text() == "keep me\n"


@pytest.mark.parametrize("command", COMMANDS)
def test_a_folder_covenant_may_not_create_files_in_is_refused(command, tmp_path, capsys, monkeypatch) -> None:
    """A read-only folder (as root, permissions do not stop a write: the refusal comes from the OS)."""
    argv, work = COMMANDS[command]
    monkeypatch.setattr(work, lambda *a, **k: pytest.fail(f"{command}: worked before refusing its output"))

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
    monkeypatch.setattr("tempfile.mkstemp", refuse)
    assert main([*argv, str(tmp_path / "out")]) == 2
    _one_line_error(capsys, str(tmp_path / "out"), f"cannot create files in {tmp_path}: Permission denied")
    assert list(tmp_path.iterdir()) == []


def test_what_an_output_folder_holds_is_checked_too(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(COMMANDS["compile"][1], lambda *a, **k: pytest.fail("compiled before refusing -o"))
    (tmp_path / "out").write_text("keep me\n")
    assert main([*COMMANDS["compile"][0], str(tmp_path / "out")]) == 2
    err = _one_line_error(capsys, f"{tmp_path / 'out'}: -o: expected a folder, got a file")
    assert "must exist" not in err and (tmp_path / "out").read_text() == "keep me\n"
    (tmp_path / "out").unlink()
    (tmp_path / "out" / "mappings").mkdir(parents=True)
    os.mkfifo(tmp_path / "out" / "network.yaml")  # what the folder holds must be ours to replace too
    assert main([*COMMANDS["compile"][0], str(tmp_path / "out")]) == 2
    _one_line_error(capsys, "network.yaml: is a FIFO")
    monkeypatch.setattr(COMMANDS["map"][1], lambda *a, **k: pytest.fail("mapped before refusing -o"))
    os.mkfifo(tmp_path / "out" / "gap.yaml")  # map -o FOLDER, one file per layer
    assert main(["map", "--acg", "tiny", "--workload", "tiny_net", "--layer", "fc", "--layer", "gap", "-o",
                 str(tmp_path / "out")]) == 2
    _one_line_error(capsys, "gap.yaml: is a FIFO")


@pytest.mark.parametrize("command", COMMANDS)
def test_a_write_failing_after_the_work_is_one_line_and_leaves_nothing(command, tmp_path, capsys,
                                                                       monkeypatch) -> None:
    """The disk fills up while the result is written: one line naming the file, exit 2, no temporary file."""
    argv, _ = COMMANDS[command]
    real_replace = os.replace

    def disk_full(src, dst):
        if Path(src).name.endswith(".tmp"):  # the rename of a written result into place
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_replace(src, dst)
    monkeypatch.setattr("mapper.spec.files.os.replace", disk_full)
    out = tmp_path / ("out" if command in ("compile", "map") else "out.yaml")
    assert main([*argv, str(out)]) == 2
    _one_line_error(capsys, "cannot write the file: No space left on device")
    left = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert left == [], left


def test_a_result_database_that_cannot_be_written_is_one_line(tmp_path, capsys, monkeypatch) -> None:
    def disk_full(db, row):
        raise sqlite3.OperationalError("database or disk is full")
    monkeypatch.setattr("mapper.app.runner.store", disk_full)
    (tmp_path / "e.yaml").write_text("name: e\nacgs: [tiny]\nworkloads: [{spec: tiny_net, layers: [fc, gap]}]\n"
                                     "time_limit: 2\nvalidate: false\n")
    for jobs in ("1", "2"):  # in this process, and with worker processes (stopped on the way out)
        assert main(["run", str(tmp_path / "e.yaml"), "--out", str(tmp_path / "out"), "--jobs", jobs]) == 2
        _one_line_error(capsys, f"{tmp_path / 'out' / 'results.db'}: cannot store a result (database or disk is full)")
