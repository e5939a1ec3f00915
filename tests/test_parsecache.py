"""The parse cache: used only for unchanged bytes of the same parser version, verified before use,
never trusted beyond plain data, and never able to change a result."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import pytest

from engine import parsecache
from engine.load import load_facts
from engine.parsecache import ParseCache
from engine.pipeline import Workspace


@pytest.fixture()
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VERDICT_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _load(facts: Path):  # type: ignore[no-untyped-def]
    cache = ParseCache.default(facts)
    assert cache is not None
    return load_facts(facts, cache=cache), cache


def _stored(cache: ParseCache) -> tuple[dict[str, object], dict[str, tuple[bytes, bytes]]]:
    assert cache.path is not None
    with cache.path.open("rb") as f:
        return pickle.load(f), pickle.load(f)


def _write(cache: ParseCache, header: dict[str, object], files: dict[str, tuple[bytes, bytes]]) -> None:
    assert cache.path is not None
    with cache.path.open("wb") as f:
        pickle.dump(header, f)
        pickle.dump(files, f)


def test_a_second_load_parses_nothing_and_an_edit_is_seen(workdir: Path, cache_dir: Path) -> None:
    first, cold = _load(workdir / "facts")
    csv_files = {f for s in first.stocks.values() if s.series for f in s.series.files}
    assert cold.misses == len(first.stocks) + len(csv_files) == 5 + 9  # stock files and price files
    again, warm = _load(workdir / "facts")
    assert warm.misses == 0 and warm.rejected == 0 and len(warm.used) == 14
    assert [b for s in again.stocks.values() if s.series for b in s.series.bars] == \
        [b for s in first.stocks.values() if s.series for b in s.series.bars]  # prices from the cache, equal
    stock = workdir / "facts" / "stocks" / "600111.yaml"
    stock.write_text(stock.read_text(encoding="utf-8").replace("name: Northern Rare Earth",
                                                               "name: Northern Rare Earth Group"), encoding="utf-8")
    edited, cache = _load(workdir / "facts")
    assert cache.misses == 1 and edited.find("600111").file.name == "Northern Rare Earth Group"
    assert {s: f.file.name for s, f in edited.stocks.items() if s != "600111.SH"} == \
        {s: f.file.name for s, f in first.stocks.items() if s != "600111.SH"}
    assert len(_stored(cache)[1]) == 5 + 9  # the old version of the file dropped out


def test_an_altered_entry_is_not_used(workdir: Path, cache_dir: Path) -> None:
    """Row 10: an entry changed with its source file unchanged (here the stated price of 600111)."""
    facts = workdir / "facts"
    _, cache = _load(facts)
    header, files = _stored(cache)
    digest = next(d for d, (_, blob) in files.items() if b"Northern Rare Earth" in blob)
    mac, blob = files[digest]
    data = pickle.loads(blob)
    data["facts"]["price"]["value"] = 99.0
    forged = pickle.dumps(data)
    _write(cache, header, {**files, digest: (mac, forged)})  # the old MAC kept
    again, check = _load(facts)
    assert check.rejected == 1 and check.misses == 1
    assert again.find("600111").facts["price"][0].value == 51.07
    # a MAC recomputed without the key is no better
    import hashlib
    import hmac

    fake = hmac.new(b"\0" * 32, f"{check.version}\0{digest}\0".encode() + forged, hashlib.sha256).digest()
    _write(cache, header, {**files, digest: (fake, forged)})
    again, check = _load(facts)
    assert check.rejected == 1 and again.find("600111").facts["price"][0].value == 51.07
    # an entry moved under another file's digest does not verify either
    other = next(d for d in files if d != digest)
    _write(cache, header, {**files, other: files[digest]})
    _, check = _load(facts)
    assert check.rejected == 1


def test_the_cache_never_changes_a_result(workdir: Path, cache_dir: Path) -> None:
    """Every symbol's evaluation, byte for byte: no cache, a cold cache, a warm one."""
    rules, facts = workdir / "rules", workdir / "facts"

    def outputs(cache: object) -> list[str]:
        ws = Workspace.open(rules, facts, cache=cache)  # type: ignore[arg-type]
        return [ws.evaluate(s, run_id="same").model_dump_json() for s in ws.symbols()]

    plain = outputs(None)
    assert not cache_dir.exists()  # no cache asked for: none written
    cold = outputs("user")
    warm_cache = ParseCache.default(facts)
    assert warm_cache is not None and len(warm_cache.entries) == 14
    warm = outputs(warm_cache)
    assert warm_cache.misses == 0 and plain == cold == warm and len(plain) == 5


def test_another_parser_version_is_not_read(workdir: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _load(workdir / "facts")
    version = parsecache.parser_version()
    monkeypatch.setattr(parsecache, "parser_version", lambda: version + "-edited")
    _, cache = _load(workdir / "facts")
    assert cache.entries == {} and cache.misses == 14


def test_the_parser_version_follows_the_parsing_code(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine import __version__

    version = parsecache.parser_version()
    assert version.startswith(__version__ + "+")
    parsecache.parser_version.cache_clear()
    monkeypatch.setattr(parsecache, "PARSER_MODULES", ("yamlsrc.py", "prices.py"))  # other bytes, other digest
    try:
        assert parsecache.parser_version() != version
    finally:
        parsecache.parser_version.cache_clear()


def test_a_corrupt_or_hostile_cache_is_ignored(workdir: Path, cache_dir: Path) -> None:
    _, cache = _load(workdir / "facts")
    header, files = _stored(cache)

    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (print, ("unpickled code ran",))

    assert cache.path is not None
    cache.path.write_bytes(pickle.dumps(Evil()))
    assert ParseCache.default(workdir / "facts").entries == {}  # type: ignore[union-attr]
    _write(cache, header, {d: (mac, pickle.dumps(Evil())) for d, (mac, _) in files.items()})
    facts, check = _load(workdir / "facts")
    assert check.rejected == 14 and facts.find("600111").file.symbol == "600111.SH"
    cache.path.write_bytes(b"not a pickle")
    facts, check = _load(workdir / "facts")
    assert check.entries == {} and facts.find("600111").file.symbol == "600111.SH"


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX permissions")
def test_a_cache_others_can_write_or_read_the_key_of_is_not_used(workdir: Path, cache_dir: Path) -> None:
    _load(workdir / "facts")
    cache_dir.chmod(0o777)
    assert ParseCache.default(workdir / "facts") is None
    cache_dir.chmod(0o700)
    (cache_dir / parsecache.KEY_FILE).chmod(0o644)
    assert ParseCache.default(workdir / "facts") is None
    (cache_dir / parsecache.KEY_FILE).chmod(0o600)
    assert ParseCache.default(workdir / "facts") is not None


def test_files_with_problems_are_not_cached_and_off_means_off(workdir: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "c"
    monkeypatch.setenv("VERDICT_CACHE_DIR", str(cache))
    c = ParseCache.default(workdir / "facts")
    assert c is not None and c.parse(b"a: [1, 2", lambda text: None) is None and c.used == {}
    monkeypatch.setenv("VERDICT_CACHE_DIR", "off")
    assert ParseCache.default(workdir / "facts") is None
    Workspace.open(workdir / "rules", workdir / "facts")
    assert not list(cache.glob("facts-*"))


def test_cache_files_of_deleted_facts_directories_are_removed(workdir: Path, tmp_path: Path,
                                                             cache_dir: Path) -> None:
    """Row 11: a replay's scratch copy (or any deleted checkout) leaves no cache file behind."""
    scratch = tmp_path / "scratch" / "facts"
    shutil.copytree(workdir / "facts", scratch)
    _, gone = _load(scratch)
    assert gone.path is not None and gone.path.exists()
    shutil.rmtree(scratch.parent)
    _, kept = _load(workdir / "facts")
    assert kept.path is not None and kept.path.exists() and not gone.path.exists()
    assert sorted(p.name for p in cache_dir.iterdir()) == sorted([kept.path.name, parsecache.KEY_FILE])


def test_no_home_directory_means_no_cache(monkeypatch: pytest.MonkeyPatch, workdir: Path) -> None:
    monkeypatch.delenv("VERDICT_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)

    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(parsecache.Path, "home", staticmethod(no_home))
    assert parsecache.cache_dir() is None
    assert Workspace.open(workdir / "rules", workdir / "facts").facts.find("600111").file.symbol == "600111.SH"
