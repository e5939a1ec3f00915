"""Signed checkpoints of the audit log: the head's hash, signed with an Ed25519 key the log never holds.

The hash chain inside one file proves that no record changed relative to the others; whoever can
write the file can still rewrite all of it and recompute every hash. A checkpoint signs the newest
record's seq and hash; since every record's hash covers the one before it, a valid chain that still
ends at that hash at that seq proves every record up to it unchanged, snapshots included.

Why Ed25519 and not an HMAC: with an HMAC the key that checks a checkpoint is the key that makes one,
so everyone able to verify (an auditor, CI, a colleague) could also forge. With Ed25519 the private key
signs and stays with whoever vouches for the log (mode 0600, outside the log, ideally another
account); the public key verifies and can be shared. The signature comes from `cryptography` (PyCA),
the optional extra `signing`, imported only here and only by the checkpoint commands.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from .errors import Location, LookupFailure, Problem, VerdictError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

    from .audit import AuditLog, VerifyResult

FORMAT = "verdict-audit-checkpoint/1"
KEY_ENV = "VERDICT_AUDIT_KEY"
PUBLIC_KEY_ENV = "VERDICT_AUDIT_PUBKEY"
PASSPHRASE_ENV = "VERDICT_AUDIT_KEY_PASSPHRASE"


def default_key_path() -> Path:
    """$VERDICT_AUDIT_KEY, else the user's config directory: ~/.config/verdict/audit-signing.key."""
    if os.environ.get(KEY_ENV):
        return Path(os.environ[KEY_ENV])
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "verdict" / "audit-signing.key"


def default_public_key_path() -> Path:
    """$VERDICT_AUDIT_PUBKEY, else the public half beside the default private key (`.pub`)."""
    if os.environ.get(PUBLIC_KEY_ENV):
        return Path(os.environ[PUBLIC_KEY_ENV])
    return default_key_path().with_suffix(".pub")


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise LookupFailure([Problem(Location(), "no-signing",
                                     "signed checkpoints need the `cryptography` package, which is not installed.",
                                     "Install the extra: pip install 'verdict[signing]'.")]) from None
    return serialization, ed25519


def _key_error(path: Path, message: str, hint: str) -> LookupFailure:
    return LookupFailure([Problem(Location(str(path)), "audit-key", message, hint)])


def key_id(public: Ed25519PublicKey) -> str:
    """A short name of a public key (the first 16 hex digits of SHA-256 of its raw bytes)."""
    serialization, _ = _crypto()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]


def generate_key(path: Path) -> str:
    """Create a key pair: the private key at `path` (PEM, mode 0600, in a 0700 folder if it makes one;
    encrypted when $VERDICT_AUDIT_KEY_PASSPHRASE is set), the public key at `path`.pub (0644).
    Never overwrites an existing key. Returns the key id."""
    serialization, ed25519 = _crypto()
    public_path = path.with_suffix(".pub")
    for p in (path, public_path):
        if p.exists():
            raise _key_error(p, f"{p} already exists; a key is never overwritten.",
                             "Move it away first if you mean to replace it (checkpoints signed with it then need "
                             "its public key to verify), or pass --key for another path.")
    private = ed25519.Ed25519PrivateKey.generate()
    passphrase = os.environ.get(PASSPHRASE_ENV)
    encryption = (serialization.BestAvailableEncryption(passphrase.encode()) if passphrase
                  else serialization.NoEncryption())
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    public = private.public_key()
    public_path.write_bytes(public.public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo))
    public_path.chmod(0o644)
    return key_id(public)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The signing key; refused if others can read it (as ssh refuses an unprotected key)."""
    serialization, ed25519 = _crypto()
    if not path.is_file():
        raise _key_error(path, f"no signing key at {path}.",
                         "Create one with `verdict audit keygen` (or pass --key / $VERDICT_AUDIT_KEY).")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise _key_error(path, f"the signing key {path} is readable by others (mode {mode:o}); refusing to use it.",
                         f"Restrict it to its owner: chmod 600 {path}.")
    passphrase = os.environ.get(PASSPHRASE_ENV)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), passphrase.encode() if passphrase else None)
    except (ValueError, TypeError) as exc:
        raise _key_error(path, f"cannot read the signing key {path}: {exc}.",
                         f"Give the PEM file `verdict audit keygen` made; if it is encrypted, set "
                         f"${PASSPHRASE_ENV}.") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise _key_error(path, f"{path} is not an Ed25519 key.", "Create one with `verdict audit keygen`.")
    return cast("Ed25519PrivateKey", key)  # checked just above (the module is imported on use, so untyped)


def load_public_key(path: Path) -> Ed25519PublicKey:
    serialization, ed25519 = _crypto()
    if not path.is_file():
        raise _key_error(path, f"no public key at {path} to check checkpoints with.",
                         "Pass --public-key (or $VERDICT_AUDIT_PUBKEY) naming the .pub file made with the signing "
                         "key.")
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except ValueError as exc:
        raise _key_error(path, f"cannot read the public key {path}: {exc}.",
                         "Give the .pub file `verdict audit keygen` made.") from None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise _key_error(path, f"{path} is not an Ed25519 public key.", "Give the .pub file `verdict audit keygen` "
                         "made.")
    return cast("Ed25519PublicKey", key)  # checked just above


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    record_hash: str
    created_utc: str
    key: str
    signature: str = ""

    def payload(self) -> bytes:
        """The signed bytes: every field but the signature, as canonical JSON."""
        return json.dumps({"format": FORMAT, "seq": self.seq, "record_hash": self.record_hash,
                           "created_utc": self.created_utc, "key": self.key},
                          sort_keys=True, separators=(",", ":")).encode()

    def line(self) -> str:
        return json.dumps({"format": FORMAT, "seq": self.seq, "record_hash": self.record_hash,
                           "created_utc": self.created_utc, "key": self.key, "signature": self.signature},
                          separators=(",", ":"))

    @classmethod
    def parse(cls, line: str, where: str) -> Checkpoint:
        try:
            d = json.loads(line)
            if d.get("format") != FORMAT:
                raise ValueError(f"format is {d.get('format')!r}, not {FORMAT!r}")
            return cls(int(d["seq"]), str(d["record_hash"]), str(d["created_utc"]), str(d["key"]),
                       str(d["signature"]))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise LookupFailure([Problem(Location(where), "bad-checkpoint", f"not a checkpoint line: {exc}.",
                                         "Give the lines `verdict audit checkpoint` printed, one per line.")]) from None


def sign(log: AuditLog, private: Ed25519PrivateKey, now: dt.datetime | None = None) -> Checkpoint:
    """Sign the log's head (after checking the chain up to it), store the checkpoint in the log and return it."""
    with log.reading():  # the head and the chain under it from one snapshot of the log
        head = log.head()
        if head is None:
            raise LookupFailure([Problem(Location(str(log.path)), "empty-audit-db",
                                         "the audit log holds no record yet: there is nothing to sign.",
                                         "Evaluate something first.")])
        result = log.verify(head[0])
    if not result.ok:
        raise VerdictError([Problem(Location(str(log.path)), "chain-broken",
                                    f"the chain is broken, so it was not signed: {result.problem}",
                                    "Find out what changed (`verdict audit verify`) before vouching for the log.")],
                           exit_code=1)
    created = (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")
    unsigned = Checkpoint(head[0], head[1], created, key_id(private.public_key()))
    signature = base64.b64encode(private.sign(unsigned.payload())).decode()
    cp = Checkpoint(unsigned.seq, unsigned.record_hash, unsigned.created_utc, unsigned.key, signature)
    log.add_checkpoint(cp.line())
    return cp


@dataclass
class CheckpointCheck:
    where: str
    checkpoint: Checkpoint
    problem: str = ""

    @property
    def ok(self) -> bool:
        return not self.problem


def check(log: AuditLog, chain: VerifyResult, cp: Checkpoint, public: Ed25519PublicKey, where: str
          ) -> CheckpointCheck:
    """Is `cp` signed by `public`, and does the log still end its first `cp.seq` records at its hash?"""
    from cryptography.exceptions import InvalidSignature

    kid = key_id(public)
    if cp.key != kid:
        return CheckpointCheck(where, cp, f"it was signed by key {cp.key}, not by the given public key ({kid}).")
    try:
        public.verify(base64.b64decode(cp.signature, validate=True), cp.payload())
    except (InvalidSignature, ValueError):
        return CheckpointCheck(where, cp, "its signature does not match its content: the checkpoint was altered "
                                          "or forged.")
    if not chain.ok and chain.bad_seq is not None and chain.bad_seq <= cp.seq:
        return CheckpointCheck(where, cp, f"the chain under it is broken at seq {chain.bad_seq}.")
    found = log.record_hash_at(cp.seq)
    if found is None:
        return CheckpointCheck(where, cp, f"the log has no record seq {cp.seq} any more (it holds {chain.records}): "
                                          "records it vouched for were removed.")
    if found != cp.record_hash:
        return CheckpointCheck(where, cp, f"record seq {cp.seq} hashes to {found[:12]}, not to the signed "
                                          f"{cp.record_hash[:12]}: the log was rewritten since (every record up to "
                                          f"seq {cp.seq} is suspect).")
    return CheckpointCheck(where, cp)
