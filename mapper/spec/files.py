"""Writing result files: atomically (a temporary file in the same folder, renamed into place, so a
reader or a killed run never sees half a file), with the usual permissions (0666 less the umask,
like any file a program creates), and, for files named after a layer or an experiment, always inside
the folder given (`files_in`). A write replaces only a regular file or creates a missing one: a
device (`-o /dev/null` as root), a FIFO, a socket, a folder or a symbolic link leading out of its
folder is refused with a `SpecError` naming the path, before anything is written (`writable_target`).
A command checks its outputs before its work starts (`check_output`: the folder exists and covenant
may create files in it), and any OS error while writing (a full disk, a read-only file system) is a
`SpecError` naming the path too: one line and exit status 2, never a traceback, never a temporary
file left behind."""

from __future__ import annotations

import hashlib
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from mapper.spec.loader import SpecError

FILE_STEM_MAX = 100
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"),
          (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"))


def writable_target(path: str | Path) -> Path:
    """`path`, if a write may replace it: missing, a regular file, or a symbolic link to a regular
    file in the same folder (the link is replaced, never what it points to). Anything else raises a
    `SpecError` naming the path, before any work is lost to it.

    >>> writable_target("/dev/null")
    Traceback (most recent call last):
    ...
    mapper.spec.loader.SpecError: /dev/null: is a device: covenant writes only regular files (give a file path)
    """
    target = Path(path)
    try:
        mode = os.lstat(target).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return target  # missing (whether its folder exists is `check_output`'s or the write's question)
    except OSError as exc:  # a name too long, a loop of links, a folder that may not be read
        raise SpecError(str(target), None, "", f"cannot write there: {exc.strerror or exc}") from None
    if stat.S_ISLNK(mode):
        real = target.resolve()
        if real.parent != target.parent.resolve() or (real.exists() and not real.is_file()):
            raise SpecError(str(target), None, "", f"is a symbolic link to {real}, outside its folder or not a "
                                                   "regular file: covenant does not write through it")
        return target
    kind = next((name for test, name in _KINDS if test(mode)), None if stat.S_ISREG(mode) else "not a regular file")
    if kind is not None:
        raise SpecError(str(target), None, "", f"is {kind}: covenant writes only regular files (give a file path)")
    return target


def check_output(path: str | Path, flag: str, folder: bool = False) -> Path:
    """`path` as an output of the command's flag `flag`, checked before any work: a file (`folder`
    False) that `writable_target` accepts, in an existing folder; or a folder that exists, or whose
    parent does (it is created then). Covenant must be able to create files there: tried by creating
    and removing an empty temporary file (permissions alone do not tell, e.g. for root or on a
    read-only file system). Anything else raises a `SpecError` naming the path.

    >>> check_output("/proc/x.yaml", "-o")
    Traceback (most recent call last):
    ...
    mapper.spec.loader.SpecError: /proc/x.yaml: -o: cannot create files in /proc: No such file or directory
    """
    target, where = Path(path), None
    try:
        if folder and target.exists() and not target.is_dir():
            raise SpecError(str(path), None, flag, "expected a folder, got a file")
        if not folder:
            if target.is_dir():
                raise SpecError(str(path), None, flag, "expected a file name, got a folder")
            writable_target(target)
        where = target if folder and target.is_dir() else target.parent
        if not where.is_dir():
            problem = f"{where} is not a folder" if where.exists() else f"the folder does not exist: {where}"
            raise SpecError(str(path), None, flag, problem)
        fd, probe = tempfile.mkstemp(prefix=".covenant-probe.", dir=where)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:  # the probe failed; or a name too long, a loop of links
        place = "" if where is None else f" in {where}"
        raise SpecError(str(path), None, flag, f"cannot create files{place}: {exc.strerror or exc}") from None
    return target


def make_folder(path: str | Path) -> Path:
    """Create the folder `path` if missing (its parent must exist); an OS error is a `SpecError`."""
    try:
        Path(path).mkdir(exist_ok=True)
    except OSError as exc:
        raise SpecError(str(path), None, "", f"cannot create the folder: {exc.strerror or exc}") from None
    return Path(path)


def atomic_write(path: str | Path, write: Callable[[str], None]) -> None:
    """Call `write(tmp_path)`, then rename the temporary file onto `path` (removed on failure);
    `path` must be a `writable_target`.

    >>> import tempfile, os
    >>> target = os.path.join(tempfile.mkdtemp(), "a.txt")
    >>> atomic_write(target, lambda tmp: open(tmp, "w").write("hello"))
    >>> open(target).read(), len(os.listdir(os.path.dirname(target)))
    ('hello', 1)
    """
    target = writable_target(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a result file is as readable as any other
        os.replace(tmp, target)
    except OSError as exc:  # a full disk, a read-only file system, a folder removed meanwhile
        raise SpecError(str(target), None, "", f"cannot write the file: {exc.strerror or exc}") from None
    finally:
        if tmp is not None and os.path.lexists(tmp):
            os.unlink(tmp)


def write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def save_figure(fig, path: str | Path) -> None:
    """Save a matplotlib figure as PNG atomically and close it."""
    import matplotlib.pyplot as plt  # lazy: matplotlib takes 0.3 s to import; only a drawing needs it

    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    finally:
        plt.close(fig)


def _umask() -> int:
    """The process's umask: read from /proc on Linux (setting it, the only portable way to read it,
    would briefly change it for other threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def safe_stem(name: str) -> str:
    """A file name (without suffix) for `name`: the name itself when it is made of letters, digits,
    '.', '_' and '-', does not start with '.' or '-' and has at most 100 characters; otherwise the
    name with every other character replaced by '_', cut to length, plus a digest of the whole name
    (so different names stay different).

    >>> safe_stem("layer1.0.conv1"), safe_stem("../escaped"), safe_stem("a/b")
    ('layer1.0.conv1', '_._escaped-75a9a607e4', 'a_b-c14cddc033')
    >>> len(safe_stem("x" * 300)), safe_stem("..") != safe_stem("__")
    (100, True)
    """
    stem = _UNSAFE.sub("_", name)
    if stem[:1] in ("", ".", "-"):
        stem = "_" + stem[1:]
    if stem != name or len(stem) > FILE_STEM_MAX:
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:10]
        stem = f"{stem[:FILE_STEM_MAX - len(digest) - 1]}-{digest}"
    return stem


def files_in(folder: str | Path, names: Iterable[str], suffix: str = ".yaml") -> dict[str, Path]:
    """One path per distinct name, each a file directly inside `folder` (`safe_stem` + suffix).

    Two names that give the same file name (also when they differ only in case, for case-insensitive
    file systems) are told apart by '-2', '-3', ... in the order given. Raises ValueError if a path
    were ever outside `folder` (a bug, never a user mistake).

    >>> sorted(p.name for p in files_in("out", ["a", "A", "b"]).values())
    ['A-2.yaml', 'a.yaml', 'b.yaml']
    """
    base = Path(os.path.abspath(folder))
    out: dict[str, Path] = {}
    taken: set[str] = set()
    for name in names:
        if name in out:
            continue
        stem = candidate = safe_stem(name)
        k = 2
        while (candidate + suffix).lower() in taken:
            candidate, k = f"{stem}-{k}", k + 1
        taken.add((candidate + suffix).lower())
        path = base / f"{candidate}{suffix}"
        if Path(os.path.normpath(path)).parent != base or path.name in (".", ".."):
            raise ValueError(f"file name for {name!r} leaves {base}")
        out[name] = path
    return out


def file_in(folder: str | Path, name: str, suffix: str = ".yaml") -> Path:
    """The path of `files_in` for one name."""
    return files_in(folder, [name], suffix)[name]
