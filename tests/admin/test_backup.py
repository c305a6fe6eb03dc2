"""``sts.admin.backup``: the whole state in one archive and back, on real SQLite homes (``sts init``).

The round trip goes through the real pipeline: tokens issued and one cancelled in the first home are validated by
an STS built on the restored home (its keys sign and verify, its token table knows the cancellation).
"""

from __future__ import annotations

import copy
import io
import json
import stat
import tarfile
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from sts.admin.backup import BackupError, backup, restore
from sts.config import load_settings
from sts.home import DEMO_PASSWORD, DEMO_USER, init_home
from sts.model import RelyingParty
from sts.runtime import Runtime, build_runtime, open_stores
from sts.store.schema import counters, users
from sts.uris import TrustVersion
from trust_client import Reply, handle_in_process, rst_envelope

PLAIN_RP = "https://plain-backup.example/"
VERSION = TrustVersion.WST13


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "origin"
    init_home(path)
    stores = open_stores(load_settings(path))
    try:
        stores.relying_parties.add(RelyingParty(endpoint=PLAIN_RP, encrypt=False))
    finally:
        stores.close()
    return path


def _request(runtime: Runtime, request_type: str, **options: object) -> Reply:
    body = rst_envelope(user=DEMO_USER, password=DEMO_PASSWORD, version=VERSION, request_type=request_type,
                        digest=True, **options)
    return handle_in_process(runtime, body)


def _issue(runtime: Runtime) -> Reply:
    reply = _request(runtime, "Issue", applies_to=PLAIN_RP)
    assert reply.status == 200, reply.fault_reason
    return reply


def _validate(runtime: Runtime, token: object) -> tuple[str, str | None]:
    reply = _request(runtime, "Validate", applies_to=None, targets={"ValidateTarget": copy.deepcopy(token)},
                     token_type_uri=VERSION.uri("RSTR/Status"))
    assert reply.status == 200, reply.fault_reason
    code = reply.root.findtext(f".//{{{VERSION.value}}}Status/{{{VERSION.value}}}Code")
    return code.rsplit("/", 1)[1], reply.root.findtext(f".//{{{VERSION.value}}}Status/{{{VERSION.value}}}Reason")


def _cancel(runtime: Runtime, token: object) -> None:
    reply = _request(runtime, "Cancel", applies_to=None, targets={"CancelTarget": copy.deepcopy(token)})
    assert reply.status == 200, reply.fault_reason


def _count(home: Path, table: object) -> int:
    stores = open_stores(load_settings(home))
    try:
        with stores.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]
    finally:
        stores.close()


def test_restored_sts_validates_earlier_tokens_and_keeps_cancellations(home: Path, tmp_path: Path) -> None:
    origin = build_runtime(load_settings(home))
    kept, cancelled = _issue(origin).token(), _issue(origin).token()
    _cancel(origin, cancelled)
    origin.stores.close()
    archive = tmp_path / "state.tar.gz"
    report = backup(load_settings(home), archive)
    assert report.rows["tokens"] >= 2 and "keys/sts-signing.key" in report.files

    target = tmp_path / "restored"
    restore(archive, target)
    restored = build_runtime(load_settings(target))
    try:
        assert _validate(restored, kept)[0] == "valid"
        code, reason = _validate(restored, cancelled)
        assert code == "invalid" and reason is not None and "cancel" in reason.lower()
    finally:
        restored.stores.close()
    # A fresh STS (other keys, no token records) does not vouch for them: the restored state is what did.
    stranger_home = tmp_path / "stranger"
    init_home(stranger_home)
    stranger = build_runtime(load_settings(stranger_home))
    try:
        assert _validate(stranger, kept)[0] == "invalid"
    finally:
        stranger.stores.close()


def test_the_archive_is_private_and_holds_rows_and_files(home: Path, tmp_path: Path) -> None:
    archive = tmp_path / "state.tar.gz"
    backup(load_settings(home), archive)
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        user_rows = [json.loads(line) for line in tar.extractfile("database/users.jsonl")]  # type: ignore[union-attr]
    assert {"home/sts.toml", "home/keys/secrets.key", "home/keys/sts-signing.key"} <= names
    assert manifest["format"] == "sts-backup" and manifest["rows"]["users"] == len(user_rows) == 1
    assert user_rows[0]["name"] == DEMO_USER


def test_restore_refuses_a_home_that_holds_an_sts_unless_forced(home: Path, tmp_path: Path) -> None:
    archive = tmp_path / "state.tar.gz"
    backup(load_settings(home), archive)
    other = tmp_path / "other"
    init_home(other)
    stores = open_stores(load_settings(other))
    stores.users.add("only-in-other", "pw-12345678")
    stores.close()
    with pytest.raises(BackupError, match="--force"):
        restore(archive, other)
    assert _count(other, users) == 2  # untouched
    restore(archive, other, force=True)
    stores = open_stores(load_settings(other))
    try:
        assert [u.name for u in stores.users.list()] == [DEMO_USER]
    finally:
        stores.close()
    assert (other / "keys" / "sts-signing.key").read_bytes() == (home / "keys" / "sts-signing.key").read_bytes()


def _rewrite(archive: Path, out: Path, change: dict[str, bytes]) -> None:
    with tarfile.open(archive) as source, tarfile.open(out, "w:gz") as target:
        for member in source.getmembers():
            data = change.get(member.name, source.extractfile(member).read())  # type: ignore[union-attr]
            member.size = len(data)
            target.addfile(member, io.BytesIO(data))


def test_a_database_with_rows_is_refused_even_in_an_empty_home(home: Path, tmp_path: Path) -> None:
    archive = tmp_path / "state.tar.gz"
    backup(load_settings(home), archive)
    shared = tmp_path / "shared.db"
    toml = (home / "sts.toml").read_text()
    assert 'database_url = ""' in toml
    pointing = tmp_path / "pointing.tar.gz"
    _rewrite(archive, pointing,
             {"home/sts.toml": toml.replace('database_url = ""', f'database_url = "sqlite:///{shared}"').encode()})
    restore(pointing, tmp_path / "first")  # the shared database was empty: fine
    with pytest.raises(BackupError, match="database of .* already holds"):
        restore(pointing, tmp_path / "second")
    assert not (tmp_path / "second" / "sts.toml").exists()


def test_a_bad_row_leaves_everything_as_it_was(home: Path, tmp_path: Path) -> None:
    archive = tmp_path / "state.tar.gz"
    origin = build_runtime(load_settings(home))
    _issue(origin)
    origin.stores.close()
    backup(load_settings(home), archive)
    broken = tmp_path / "broken.tar.gz"
    _rewrite(archive, broken, {"database/tokens.jsonl": b'{"no_such_column": 1}\n'})
    other = tmp_path / "other"
    init_home(other)
    stores = open_stores(load_settings(other))
    stores.users.add("only-in-other", "pw-12345678")
    stores.close()
    before_key = (other / "keys" / "sts-signing.key").read_bytes()
    with pytest.raises(BackupError, match="tokens.jsonl line 1: .*no_such_column"):
        restore(broken, other, force=True)
    assert _count(other, users) == 2  # the users deleted and re-inserted before the bad row are back
    assert (other / "keys" / "sts-signing.key").read_bytes() == before_key
    assert not list(other.glob(".sts-restore-*"))


def test_another_schema_version_is_refused(home: Path, tmp_path: Path) -> None:
    archive = tmp_path / "state.tar.gz"
    backup(load_settings(home), archive)
    with tarfile.open(archive) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    manifest["schema_version"] = 999
    future = tmp_path / "future.tar.gz"
    _rewrite(archive, future, {"manifest.json": json.dumps(manifest).encode()})
    with pytest.raises(BackupError, match="schema version 999"):
        restore(future, tmp_path / "target")


def test_an_archive_that_climbs_out_is_refused(home: Path, tmp_path: Path) -> None:
    archive = tmp_path / "state.tar.gz"
    backup(load_settings(home), archive)
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(archive) as source, tarfile.open(evil, "w:gz") as target:
        for member in source.getmembers():
            target.addfile(member, source.extractfile(member))
        info = tarfile.TarInfo("home/../../escaped")
        info.size = 1
        target.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(BackupError, match="unexpected entry"):
        restore(evil, tmp_path / "target")
    assert not (tmp_path / "escaped").exists()


def test_the_config_version_moves_on_so_running_nodes_reload(home: Path, tmp_path: Path) -> None:
    archive = tmp_path / "state.tar.gz"
    backup(load_settings(home), archive)
    target = tmp_path / "target"
    restore(archive, target)

    def config_version(path: Path) -> int:
        stores = open_stores(load_settings(path))
        try:
            with stores.engine.connect() as conn:
                return int(conn.execute(select(counters.c.value)).scalar_one())
        finally:
            stores.close()

    assert config_version(target) > config_version(home)


def test_backup_reads_one_snapshot_while_the_sts_writes(home: Path, tmp_path: Path) -> None:
    """Users are added (with their claims, one transaction each) during the backup: the archive never holds
    claims of a user it does not hold, nor a user without the claims it was created with."""
    stop = threading.Event()
    settings = load_settings(home)

    def writer() -> None:
        stores = open_stores(settings)
        number = 0
        try:
            while not stop.is_set():
                number += 1
                stores.users.add(f"busy-{number}", "pw-12345678", [("urn:claim:n", str(number))])
        finally:
            stores.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for attempt in range(3):
            archive = tmp_path / f"busy-{attempt}.tar.gz"
            backup(settings, archive)
            with tarfile.open(archive) as tar:
                ids = {json.loads(line)["id"] for line in tar.extractfile("database/users.jsonl")}  # type: ignore[union-attr]
                claimed = {json.loads(line)["user_id"]
                           for line in tar.extractfile("database/user_claims.jsonl")}  # type: ignore[union-attr]
            assert claimed == ids
    finally:
        stop.set()
        thread.join()
    assert _count(home, users) > 1  # the writer did write meanwhile
