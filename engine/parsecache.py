"""A cache of parsed stock fact files, keyed by the SHA-1 of each file's bytes.

A universe of 5,000 stock files took 7 s to load, 70% of it PyYAML building Python objects from
the parsed nodes; a market screen re-reads the same files every evening. The data a well-formed
file parses to (dicts, lists, strings, numbers, dates) is kept per facts directory in one file
under the user's cache directory and used again for any file whose bytes are unchanged; every
file is still read and hashed, so an edit is never missed. Files with problems are never cached
(they are parsed again with position maps to report them).

The cache is only an accelerator: it is written atomically (a temporary file, then a rename), read
with an unpickler that refuses anything but plain data and dates, and any failure to read or
write it is ignored. `VERDICT_CACHE_DIR` moves it; `VERDICT_CACHE_DIR=off` turns it off.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import pickle
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ENV_VAR = "VERDICT_CACHE_DIR"
FORMAT = 1  # bump when the parsed form changes


def cache_dir() -> Path | None:
    value = os.environ.get(ENV_VAR)
    if value is not None:
        return None if value.strip().lower() in ("", "off", "0", "no") else Path(value)
    try:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    except (RuntimeError, KeyError):  # no home directory (a bare container): no cache
        return None
    return base / "verdict"


class _PlainData(pickle.Unpickler):
    """Only what YAML's safe loader produces may come back: no other class can be named."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "datetime" and name in ("date", "datetime"):
            return getattr(dt, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not plain data")


class ParseCache:
    def __init__(self, root: Path) -> None:
        folder = cache_dir()
        key = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:16]
        self.path = folder / f"facts-{key}.pickle" if folder else None
        self.entries: dict[str, Any] = self._read()
        self.used: dict[str, Any] = {}
        self.misses = 0

    def _read(self) -> dict[str, Any]:
        if self.path is None:
            return {}
        try:
            with self.path.open("rb") as f:
                data = _PlainData(io.BytesIO(f.read())).load()
        except Exception:  # missing, unreadable, from another version, tampered: start afresh
            return {}
        if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("files"), dict):
            return {}
        return data["files"]

    def parse(self, content: bytes, parse: Callable[[str], Any]) -> Any:
        """`parse(text)` of these bytes, from the cache when the same bytes were parsed before.
        A None result (the document has a problem) is not cached."""
        key = hashlib.sha1(content).hexdigest()
        if key in self.entries:
            data = self.entries[key]
        else:
            data = parse(content.decode("utf-8", errors="replace"))
            self.misses += 1
        if data is not None:
            self.used[key] = data
        return data

    def save(self) -> None:
        """Keep exactly the entries of this load (files removed or edited since drop out)."""
        if self.path is None or (self.misses == 0 and len(self.used) == len(self.entries)):
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".facts-", dir=self.path.parent)
            try:
                with os.fdopen(fd, "wb") as f:
                    pickle.dump({"format": FORMAT, "files": self.used}, f, protocol=pickle.HIGHEST_PROTOCOL)
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError:  # a read-only home, a full disk: the cache is only an accelerator
            pass
