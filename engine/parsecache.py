"""A cache of parsed stock and price files, keyed by each file's bytes and the parser's version.

A universe of 5,000 stock files took 7 s to load, 70% of it PyYAML building Python objects from
the parsed nodes; a market screen re-reads the same files every evening. The data a well-formed
file parses to (dicts, lists, strings, numbers, dates) is kept per facts directory in one file
under the user's cache directory and used again for any file whose bytes are unchanged; every
file is still read and hashed, so an edit is never missed. Files with problems are never cached
(they are parsed again with position maps to report them).

The cache is only an accelerator and must never change a result:
- an entry is found by the SHA-256 of the file's bytes, and a cache file holds entries of one
  parser version only (the engine version and a digest of the modules that produce the parsed form,
  so an edited parser never reads an older form);
- each entry carries an HMAC-SHA256 of (parser version, content digest, entry bytes) under a random
  key kept beside the cache (mode 0600); it is checked before the entry is unpickled, so an entry
  altered by hand or copied from elsewhere is parsed afresh, and unpickling accepts plain data and
  dates only;
- the cache directory must belong to the user and not be writable by others, else no cache is used;
- it is written atomically (a temporary file, then a rename); any failure to read or write it is
  ignored; files of facts directories that no longer exist are removed when a cache is saved.
The caller decides whether there is one: `load_facts(..., cache=None)` reads every file afresh
(audit replays do), `ParseCache.default(root)` is the user's (`VERDICT_CACHE_DIR` moves it,
`VERDICT_CACHE_DIR=off` turns it off).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import io
import os
import pickle
import secrets
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ENV_VAR = "VERDICT_CACHE_DIR"
FORMAT = 2  # the layout of the cache file itself
KEY_FILE = "cache.key"
# The modules whose code decides what a file parses to: a change to any of them is a new parser version.
PARSER_MODULES = ("yamlsrc.py", "prices.py", "parsecache.py", "limits.py", "readfile.py")


def cache_dir() -> Path | None:
    value = os.environ.get(ENV_VAR)
    if value is not None:
        return None if value.strip().lower() in ("", "off", "0", "no") else Path(value)
    try:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    except (RuntimeError, KeyError):  # no home directory (a bare container): no cache
        return None
    return base / "verdict"


@functools.cache
def parser_version() -> str:
    """The engine version plus a digest of the parsing modules' source."""
    from . import __version__

    h = hashlib.sha256(__version__.encode())
    here = Path(__file__).parent
    for name in PARSER_MODULES:
        try:
            h.update(name.encode() + b"\0" + (here / name).read_bytes())
        except OSError:
            h.update(name.encode() + b"\0missing")
    return f"{__version__}+{h.hexdigest()[:16]}"


class _PlainData(pickle.Unpickler):
    """Only what YAML's safe loader produces may come back: no other class can be named."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "datetime" and name in ("date", "datetime"):
            return getattr(dt, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not plain data")


def _plain(blob: bytes) -> Any:
    return _PlainData(io.BytesIO(blob)).load()


def _private_dir(folder: Path) -> bool:
    """The folder exists (or is created) as ours and writable by no one else."""
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        st = folder.stat()
    except OSError:
        return False
    owner_ok = not hasattr(os, "geteuid") or st.st_uid == os.geteuid()
    return owner_ok and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _key(folder: Path) -> bytes | None:
    """The cache's MAC key: created once with mode 0600, refused if others may read or change it."""
    path = folder / KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    except OSError:
        return None
    else:
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
    try:
        st = path.lstat()
        if not stat.S_ISREG(st.st_mode) or st.st_mode & 0o077:
            return None
        if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
            return None
        key = path.read_bytes()
    except OSError:
        return None
    return key if len(key) == 32 else None


class ParseCache:
    """The cached parses of one facts directory. `parse()` looks up and records; `save()` writes back."""

    def __init__(self, root: Path, path: Path | None = None, key: bytes | None = None) -> None:
        self.root = root
        self.path = path
        self.key = key or b""
        self.version = parser_version()
        self.entries: dict[str, tuple[bytes, bytes]] = self._read()
        self.used: dict[str, tuple[bytes, bytes]] = {}
        self.misses = 0
        self.rejected = 0  # entries whose MAC did not verify or that did not unpickle

    @classmethod
    def default(cls, root: Path) -> ParseCache | None:
        """The user's cache for this facts directory, or None when it is off or cannot be kept safely."""
        folder = cache_dir()
        if folder is None or not _private_dir(folder):
            return None
        key = _key(folder)
        if key is None:
            return None
        name = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
        return cls(root, folder / f"facts-{name}.pickle", key)

    def _mac(self, digest: str, blob: bytes) -> bytes:
        return hmac.new(self.key, f"{self.version}\0{digest}\0".encode() + blob, hashlib.sha256).digest()

    def _read(self) -> dict[str, tuple[bytes, bytes]]:
        if self.path is None:
            return {}
        try:
            with self.path.open("rb") as f:
                header = _PlainData(f).load()
                if not isinstance(header, dict) or header.get("format") != FORMAT \
                        or header.get("version") != self.version:
                    return {}
                files = _PlainData(f).load()
        except Exception:  # missing, unreadable, from another version, damaged: start afresh
            return {}
        if not isinstance(files, dict):
            return {}
        return {k: v for k, v in files.items() if isinstance(k, str) and isinstance(v, tuple) and len(v) == 2
                and isinstance(v[0], bytes) and isinstance(v[1], bytes)}

    def parse(self, content: bytes, parse: Callable[[str], Any]) -> Any:
        """`parse(text)` of these bytes, from the cache when the same bytes were parsed before by this
        parser version and the entry verifies. A None result (the document has a problem) is not cached."""
        digest = hashlib.sha256(content).hexdigest()
        entry = self.entries.get(digest)
        if entry is not None:
            mac, blob = entry
            if hmac.compare_digest(mac, self._mac(digest, blob)):
                try:
                    data = _plain(blob)
                except Exception:
                    self.rejected += 1
                else:
                    self.used[digest] = entry
                    return data
            else:
                self.rejected += 1
        data = parse(content.decode("utf-8", errors="replace"))
        self.misses += 1
        if data is not None and self.path is not None:
            blob = pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)
            self.used[digest] = (self._mac(digest, blob), blob)
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
                    header = {"format": FORMAT, "version": self.version, "root": str(self.root.resolve())}
                    pickle.dump(header, f, protocol=pickle.HIGHEST_PROTOCOL)
                    pickle.dump(self.used, f, protocol=pickle.HIGHEST_PROTOCOL)
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError:  # a read-only home, a full disk: the cache is only an accelerator
            return
        prune(self.path.parent)


def prune(folder: Path) -> list[Path]:
    """Remove cache files of facts directories that no longer exist (a deleted checkout, a scratch
    copy); returns what was removed."""
    removed = []
    for path in folder.glob("facts-*.pickle"):
        try:
            with path.open("rb") as f:
                header = _PlainData(f).load()
            root = header.get("root") if isinstance(header, dict) else None
            if not isinstance(root, str) or not Path(root).is_dir():
                path.unlink()
                removed.append(path)
        except Exception:  # unreadable or from an older format: nothing of ours can use it
            try:
                path.unlink()
                removed.append(path)
            except OSError:
                pass
    return removed
