"""Writing result files: atomically (a temporary file in the same folder, renamed into place, so a
reader or a killed run never sees half a file), with the usual permissions (0666 less the umask,
like any file a program creates), and, for files named after a layer or an experiment, always inside
the folder given (`files_in`). A write replaces only a regular file or creates a missing one: a
device (`-o /dev/null` as root), a FIFO, a socket, a folder or a symbolic link leading out of its
folder is refused with a `SpecError` naming the path, before anything is written (`writable_target`)."""

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
    except FileNotFoundError:
        return target
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
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a result file is as readable as any other
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
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
