"""Every bad input the command line is known to meet, in one table: exit status 2, one line on
stderr saying what is wrong (and where), nothing on stdout, never a traceback; and the edges that
are still good input (exit 0)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mapper.app.cli import main
from mapper.spec.limits import MAX_SPEC_BYTES
from mapper.spec.loader import PROJECT_ROOT

ZIGZAG = PROJECT_ROOT / "tests" / "data" / "zigzag"
ONNX = str(PROJECT_ROOT / "workloads" / "tiny_cnn.onnx")
MAP = ["map", "--acg", "tiny", "--workload", "tiny_net"]
COMPILE = ["compile", "--acg", "tiny", "--workload", "tiny_net"]

# (argv, what the one line must say, exit status); {tmp} is a folder holding the files of `_files`.
CASES = [
    # numbers (docs/cli.md#limits)
    ([*MAP, "--time-limit", "0"], "--time-limit: expected a positive number of seconds, at most 2**50, got 0", 2),
    ([*MAP, "--time-limit", "inf"], "--time-limit: expected a positive number of seconds, at most 2**50, got inf", 2),
    ([*MAP, "--time-limit", "nan"], "--time-limit: expected a positive number of seconds, at most 2**50, got nan", 2),
    ([*COMPILE, "--time-limit", "1e30"], "--time-limit: expected a positive number of seconds", 2),
    ([*COMPILE, "--time-limit=-1"], "got -1", 2),
    (["schedule", "--workload", "tiny_net", "--time-limit", "inf"], "--time-limit: expected a positive", 2),
    ([*MAP, "--time-limit", "ten"], "argument --time-limit: invalid float value: 'ten'", 2),
    ([*MAP, "--seed", "2147483649"], "--seed: expected an integer from 0 to 2**31, got 2147483649", 2),
    (["simulate", "{tmp}/none.yaml", "--seed=-5"], "--seed: expected an integer from 0 to 2**31, got -5", 2),
    ([*COMPILE, "--cores", "0"], "--cores: expected a number of cores from 1 to 2**31", 2),
    ([*COMPILE, "--cores=-1"], "got -1", 2),
    ([*COMPILE, "--cores", "1", "--fuse", "none", "--no-validate", "--json"], None, 0),  # the lowest cap
    (["run", "covenant_table_quick", "--jobs", "0"], "--jobs: expected 1 to 256 worker processes, got 0", 2),
    (["run", "covenant_table_quick", "--jobs", "100000"], "--jobs: expected 1 to 256 worker processes, got 100000", 2),
    (["schedule", "--workload", "tiny_net", "--budget", "12 KiBB"], "--budget: expected a size such as 4096", 2),
    (["run", "{tmp}/inf.yaml"], "inf.yaml:4: time_limit: expected a number > 0 and <= 2**50, got inf", 2),
    # files: too large (refused before they are read), missing, unreadable, not YAML
    (["show", "acg", "{tmp}/big.yaml"], "big.yaml: the file has 16,777,217 bytes, more than the 16 MiB", 2),
    (["show", "workload", "{tmp}/big.yaml"], "more than the 16 MiB a spec or mapping file may have", 2),
    (["simulate", "{tmp}/big.yaml"], "more than the 16 MiB a spec or mapping file may have", 2),
    (["run", "{tmp}/big.yaml"], "more than the 16 MiB a spec or mapping file may have", 2),
    (["import", "zigzag", "{tmp}/big.yaml"], "more than the 16 MiB a spec or mapping file may have", 2),
    (["show", "acg", "/dev/zero"], "/dev/zero: more than the 16 MiB a spec or mapping file may have", 2),
    (["show", "acg", "{tmp}/none.yaml"], "none.yaml: no such file", 2),
    (["show", "acg", "{tmp}/folder.yaml"], "folder.yaml: cannot read the file: Is a directory", 2),
    (["show", "acg", "{tmp}/latin1.yaml"], "latin1.yaml: cannot read the file: not UTF-8 text", 2),
    (["show", "acg", "{tmp}/empty.yaml"], "empty.yaml:1: expected a YAML mapping at the top level", 2),
    (["show", "workload", "{tmp}/syntax.yaml"], "syntax.yaml:3: YAML syntax error", 2),
    (["show", "acg", "{tmp}/list.yaml"], "list.yaml:1: expected a YAML mapping at the top level, got a list", 2),
    # messages that say what is wrong (issue 25)
    ([*MAP, "--seed", "-1"], "covenant: error: --seed: expected an integer from 0 to 2**31, got -1", 2),
    ([*MAP, "--layer", "nope"], "'nope' (layers: conv1, branch_a, branch_b, mix, add, pool, gap, fc)", 2),
    (["map", "--acg", "tiny", "--workload", "resnet18", "--layer", "nope"],
     "(layers: conv1, pool1, layer1.0.conv1, layer1.0.conv2, layer1.0.add, layer1.1.conv1, layer1.1.conv2, "
     "layer1.1.add, layer2.0.conv1, layer2.0.conv2, layer2.0.downsample, layer2.0.add, ... (31 in all))", 2),
    ([*MAP, "--layer", "gapp"], "no layer named 'gapp'; did you mean 'gap'?", 2),
    (["import", "zigzag", str(ZIGZAG / "mapping" / "tpu_like.yaml")],
     "tpu_like.yaml:1: expected a ZigZag hardware file (name, memories, operational_array), got a ZigZag mapping "
     "file (give it with --mapping", 2),
    (["import", "zigzag", str(ZIGZAG / "hardware" / "tpu_like.yaml"), "--mapping", str(ZIGZAG / "hardware" /
      "tpu_like.yaml")], "got a ZigZag hardware file (give it first", 2),
    (["import", "zigzag", str(PROJECT_ROOT / "acg_specs" / "tiny.yaml")], "got a covenant ACG (give it with --acg", 2),
    (["show", "workload", str(PROJECT_ROOT / "acg_specs" / "tiny.yaml")], "tiny.yaml:4: this is a covenant ACG (give "
     "it with --acg, or to covenant show acg), not the file expected here", 2),
    (["map", "--acg", "{tmp}/w.yaml", "--workload", "tiny"], "this is a covenant workload (give it with --workload", 2),
    (["map", "--acg", "tiny_net", "--workload", "x"], "tiny_net: a shipped spec in workloads/, not in acg_specs/", 2),
    (["simulate", str(PROJECT_ROOT / "experiments" / "covenant_table_quick.yaml")],
     "this is a covenant experiment (give it to covenant run)", 2),
    (["run", str(PROJECT_ROOT / "acg_specs" / "genesys.yaml")], "this is a covenant ACG", 2),
    (["show", "acg", "{tmp}/cycle.yaml"], "cycle.yaml:11: edges[2]: the edges IBUF -> WBUF -> IBUF form a cycle on "
     "chip through storages at the same level (level 1)", 2),
    ([*MAP, "--acg", "{tmp}/cycle.yaml"], "cycle.yaml:11: edges[2]: the edges IBUF -> WBUF -> IBUF", 2),
    # names
    (["show", "acg", "nope"], "nope: no such file, nor a shipped spec in acg_specs/", 2),
    (["map", "--acg", "tiny", "--workload", "nope"], "nope: no such file, nor a shipped spec in workloads/", 2),
    ([*MAP, "--strategy", "nope"], "argument --strategy: invalid choice: 'nope'", 2),
    ([*MAP, "--objective", "speed"], "argument --objective: invalid choice: 'speed'", 2),
    ([*COMPILE, "--order", "random"], "argument --order: invalid choice: 'random'", 2),
    ([*MAP, "--strategy", "anneal", "--option", "stepz=1"], "--option: strategy anneal has no option 'stepz'", 2),
    ([*MAP, "--option", "noequals"], "--option: expected KEY=VALUE, got 'noequals'", 2),
    ([*MAP, "--option", "seed=1", "--option", "seed=2"], "--option: option 'seed' given twice", 2),
    (["show", "nonsense", "x"], "argument what: invalid choice: 'nonsense'", 2),
    (["show", "acg", "tiny", "--acg", "genesys"], "--acg: only used with `show mapping`", 2),
    (["show", "mapping", "{tmp}/none.yaml", "--png", "x.png"], "--png: draws an ACG or a workload, not a mapping", 2),
    (["run", "covenant_table_quick", "--scheduler", "tcp://x:1"], "--scheduler: only used with --executor dask", 2),
    (["import", "{tmp}/none.onnx"], "none.onnx", 2),
    (["import", "zigzag"], "import zigzag: expected a ZigZag hardware file", 2),
    (["import", ONNX, "{tmp}/second.yaml"], "a second file is taken only after 'zigzag'", 2),
    (["import", "zigzag", str(ZIGZAG / "hardware" / "tpu_like.yaml"), "--dtype", "int8"],
     "--dtype: applies to ONNX models", 2),
    (["import", ONNX, "--mapping", "m.yaml"], "--mapping: applies to 'covenant import zigzag HARDWARE.yaml' only", 2),
    # outputs (tests/test_cli_outputs.py tries every command)
    ([*MAP, "-o", "{tmp}/a_file/sub.yaml"], "-o: {tmp}/a_file is not a folder", 2),
    ([*COMPILE, "-o", "{tmp}/a_file"], "-o: expected a folder, got a file", 2),
    ([*COMPILE, "-o", "/proc/covenant"], "-o: cannot create files in /proc", 2),
    (["import", ONNX, "-o", "{tmp}"], "-o: expected a file name, got a folder", 2),
    (["show", "acg", "tiny", "--png", "{tmp}/no/such/x.png"], "--png: the folder does not exist", 2),
    # usage
    ([], "the following arguments are required: command (usage: covenant --help)", 2),
    (["map", "--acg", "tiny"], "the following arguments are required: --workload (usage: covenant map --help)", 2),
    ([*MAP, "--wdie"], "unrecognized arguments: --wdie", 2),
]


CYCLE = """\
name: cycle
nodes:
  DRAM: {kind: storage, capacity: 1MiB, offchip: true}
  IBUF: {kind: storage, capacity: 256B}
  WBUF: {kind: storage, capacity: 256B}
  ARRAY: {kind: compute, capabilities: [{name: mul, expr: "Z[i] = X[i] * Y[i]", dims: {i: 4},
          operands: {X: IBUF, Y: WBUF, Z: IBUF}, dtypes: {X: int8, Y: int8, Z: int8}, cycles: "1"}]}
edges:
  - {from: DRAM, to: IBUF, bytes_per_cycle: 4}
  - {from: DRAM, to: WBUF, bytes_per_cycle: 4}
  - {from: IBUF, to: WBUF, bytes_per_cycle: 4}
  - {from: WBUF, to: IBUF, bytes_per_cycle: 4}
  - {from: IBUF, to: DRAM, bytes_per_cycle: 4}
"""  # IBUF and WBUF are both loaded from DRAM: the cycle between them has no direction


def _files(tmp: Path) -> None:
    with open(tmp / "big.yaml", "wb") as big:
        big.truncate(MAX_SPEC_BYTES + 1)  # sparse: nothing is written, nothing needs reading
    (tmp / "folder.yaml").mkdir()
    (tmp / "latin1.yaml").write_bytes("name: caf\u00e9\n".encode("latin-1"))
    (tmp / "empty.yaml").write_text("")
    (tmp / "syntax.yaml").write_text("name: x\nlayers: [\n")
    (tmp / "list.yaml").write_text("- a\n- b\n")
    (tmp / "a_file").write_text("keep me\n")
    (tmp / "cycle.yaml").write_text(CYCLE)
    (tmp / "inf.yaml").write_text("name: e\nacgs: [tiny]\nworkloads: [{spec: tiny_net, layers: [fc]}]\n"
                                  "time_limit: .inf\n")
    (tmp / "w.yaml").write_text((PROJECT_ROOT / "workloads" / "tiny_net.yaml").read_text())


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv, message, status", CASES, ids=[" ".join(c[0])[-60:] or "no command" for c in CASES])
def test_bad_input_is_one_line_and_exit_2(argv, message, status, tmp_path, capsys, monkeypatch) -> None:
    _files(tmp_path)
    monkeypatch.chdir(tmp_path)
    code, out, err = _run([a.replace("{tmp}", str(tmp_path)) for a in argv], capsys)
    assert "Traceback" not in err
    if status == 0:
        assert (code, err) == (0, ""), err
        return
    lines = err.splitlines()
    assert (code, out, len(lines)) == (status, "", 1), err
    assert lines[0].startswith("covenant") and ": error: " in lines[0], err
    assert message.replace("{tmp}", str(tmp_path)) in lines[0], err
    assert (tmp_path / "a_file").read_text() == "keep me\n"


def test_the_table_is_long() -> None:
    assert sum(status == 2 for _, _, status in CASES) >= 40


def test_a_bug_is_one_line_exit_3_and_the_traceback_on_request(capsys, monkeypatch) -> None:
    """An exception that is neither bad input nor an interrupt (a bug in covenant) ends the command
    with one line naming it, exit status 3; COVENANT_TRACEBACK=1 lets the traceback through."""
    def broken(*_args, **_kwargs):
        raise TypeError("unhashable type: '_LocDict'")

    monkeypatch.setattr("mapper.app.cli_network.import_zigzag", broken)
    monkeypatch.delenv("COVENANT_TRACEBACK", raising=False)
    hw = str(ZIGZAG / "hardware" / "tpu_like.yaml")
    code, out, err = _run(["import", "zigzag", hw], capsys)
    assert (code, out) == (3, "") and "Traceback" not in err and len(err.splitlines()) == 1
    assert err.startswith("covenant: internal error") and "TypeError: unhashable type" in err
    monkeypatch.setenv("COVENANT_TRACEBACK", "1")
    with pytest.raises(TypeError):
        main(["import", "zigzag", hw])
