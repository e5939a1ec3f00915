"""The parse cache of stock files: used only for unchanged bytes, never trusted beyond plain data."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from engine.load import load_facts
from engine.parsecache import ParseCache


@pytest.fixture()
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VERDICT_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_a_second_load_parses_nothing_and_an_edit_is_seen(workdir: Path, cache_dir: Path) -> None:
    first = load_facts(workdir / "facts")
    cache = ParseCache(workdir / "facts")
    csv_files = {f for s in first.stocks.values() if s.series for f in s.series.files}
    assert len(cache.entries) == len(first.stocks) + len(csv_files) == 5 + 9  # stock files and price files
    again_cold = load_facts(workdir / "facts")
    assert [b for s in again_cold.stocks.values() if s.series for b in s.series.bars] == \
        [b for s in first.stocks.values() if s.series for b in s.series.bars]  # prices from the cache, equal
    stock = workdir / "facts" / "stocks" / "600111.yaml"
    stock.write_text(stock.read_text(encoding="utf-8").replace("name: Northern Rare Earth",
                                                               "name: Northern Rare Earth Group"), encoding="utf-8")
    again = load_facts(workdir / "facts")
    assert again.find("600111").file.name == "Northern Rare Earth Group"
    assert {s: f.file.name for s, f in again.stocks.items() if s != "600111.SH"} == \
        {s: f.file.name for s, f in first.stocks.items() if s != "600111.SH"}
    assert len(ParseCache(workdir / "facts").entries) == 5 + 9  # the old version of the file dropped out


def test_a_corrupt_or_hostile_cache_is_ignored(workdir: Path, cache_dir: Path) -> None:
    load_facts(workdir / "facts")
    path = ParseCache(workdir / "facts").path
    assert path is not None and path.exists()

    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (print, ("unpickled code ran",))

    path.write_bytes(pickle.dumps({"format": 1, "files": {"x": Evil()}}))
    assert ParseCache(workdir / "facts").entries == {}  # refused: only plain data and dates may load
    path.write_bytes(b"not a pickle")
    assert ParseCache(workdir / "facts").entries == {}
    facts = load_facts(workdir / "facts")
    assert facts.find("600111").file.symbol == "600111.SH"


def test_files_with_problems_are_not_cached_and_off_means_off(workdir: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "c"
    monkeypatch.setenv("VERDICT_CACHE_DIR", str(cache))
    c = ParseCache(workdir / "facts")
    assert c.parse(b"a: [1, 2", lambda text: None) is None and c.used == {}
    monkeypatch.setenv("VERDICT_CACHE_DIR", "off")
    load_facts(workdir / "facts")
    assert ParseCache(workdir / "facts").path is None and not cache.exists()


def test_no_home_directory_means_no_cache(monkeypatch: pytest.MonkeyPatch, workdir: Path) -> None:
    from engine import parsecache

    monkeypatch.delenv("VERDICT_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)

    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(parsecache.Path, "home", staticmethod(no_home))
    assert parsecache.cache_dir() is None
    assert load_facts(workdir / "facts").find("600111").file.symbol == "600111.SH"
