"""Reading a user's file: every way it can fail (permissions, a link loop, a directory, a size beyond
the limits) becomes one problem naming the file, never an exception; the caller reports it and, in a
screen, leaves out only the symbol the file belongs to."""

from __future__ import annotations

import errno
from pathlib import Path

from . import limits
from .errors import Problem, problem


def read_file(path: Path, shown: str, problems: list[Problem], limit: int | None = None) -> bytes | None:
    """The bytes of a file, or None with a problem saying why it cannot be read (permissions, a link
    loop, a directory, a file beyond `limit`, by default limits.MAX_YAML_BYTES)."""
    limit = limits.MAX_YAML_BYTES if limit is None else limit
    try:
        with path.open("rb") as f:
            content = f.read(limit + 1)
    except OSError as exc:
        problems.append(unreadable(shown, exc))
        return None
    if len(content) > limit:
        problems.append(problem(shown, 0, 0, "too-large", f"the file is larger than {limit // (1024 * 1024)} MiB, "
                                "the most verdict reads from one file.", "Split it into smaller files."))
        return None
    return content


def unreadable(shown: str, exc: OSError) -> Problem:
    """One clear problem for a file the system will not let us read."""
    why = {errno.EACCES: ("permission denied", "Let your user read it (chmod u+r) or move it out of the folder."),
           errno.EPERM: ("permission denied", "Let your user read it (chmod u+r) or move it out of the folder."),
           errno.ELOOP: ("it is a symbolic link that loops", "Remove the link or point it at a real file."),
           errno.EISDIR: ("it is a directory, not a file", "Rename or move it."),
           errno.ENOENT: ("it does not exist", "Check the name and path that refer to it (or the link's target).")}
    what, hint = why.get(exc.errno or 0, (exc.strerror or type(exc).__name__, "Check the file."))
    return problem(shown, 0, 0, "unreadable", f"cannot read the file: {what}.", hint)
