"""A batch of audit records hashed in two steps (engine/audit.py `Batch`): what each record's hash covers
up to its output when the evaluation arrives, the chain's part at commit. The hash must stay the one
`verify` recomputes from the stored fields, whatever they hold, and a batch prepared while another
process appends must still chain after that process's records."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from engine import audit
from engine.audit import AuditLog, Entry

text = st.text(st.characters(codec="utf-8"), max_size=60)  # quotes, backslashes, controls, CJK, astral


@given(st.fixed_dictionaries({
    "seq": st.integers(1, 2**63 - 1), "run_id": text, "created_utc": text, "os_user": text,
    "engine_version": text, "symbol": text, "rating": text, "rules_snapshot": text, "facts_snapshot": text,
    "output": st.text(st.characters(codec="utf-8"), max_size=400), "prev_hash": text}))
def test_the_hash_taken_in_two_steps_is_the_record_hash(fields: dict[str, object]) -> None:
    assert audit._hash_tail(audit._hash_head(fields), fields) == audit.record_hash(fields)


def _files() -> tuple[dict[str, bytes], dict[str, bytes]]:
    return {"a.yaml": b"rules: []\n"}, {"stocks/600111.yaml": "name: 北方稀土\n".encode()}


def _entry(i: int, output: str = '{"x": "a \\"quoted\\" 北"}') -> Entry:
    return Entry(f"run{i:04}", "600111.SH", "Buy", output, "0.2.0")


def test_a_batch_chains_after_records_appended_while_it_was_filled(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite3"
    rules, facts = _files()
    mine, other = AuditLog(path), AuditLog(path)
    try:
        batch = mine.batch(rules_files=rules, facts_files=facts)
        batch.add(_entry(1))
        batch.add(_entry(2, audit.pack_output('{"packed": true}')))  # as a screen's worker sends it
        other.append_many([_entry(9)], rules_files=rules, facts_files=facts)  # another process, meanwhile
        records = batch.commit()
        assert [r.seq for r in records] == [2, 3] and [r.run_id for r in records] == ["run0001", "run0002"]
        assert records[0].prev_hash == other.get("run0009").record_hash
        assert records[1].output == '{"packed": true}'
        assert mine.verify().records == 3
        assert records[0].created_utc <= records[1].created_utc  # stamped as they arrived, chained in that order
    finally:
        mine.close()
        other.close()


def test_a_batch_never_committed_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite3"
    rules, facts = _files()
    log = AuditLog(path)
    try:
        batch = log.batch(rules_files=rules, facts_files=facts, keep=False)
        batch.add(_entry(1), now=dt.datetime(2026, 11, 26, tzinfo=dt.UTC))
        assert len(batch) == 1
        del batch  # the screen failed before recording
        assert log.verify().records == 0
        assert log.db.execute("SELECT COUNT(*) FROM blobs").fetchone()[0] == 0
    finally:
        log.close()
