"""Where attachment bytes live: one interface, two backends.

- ``LocalStorage`` (default): files under ``instance/attachments`` (``ATTACHMENT_DIR``), outside
  ``static/``, under random names, readable by the app's user only.
- ``S3Storage``: an S3-compatible bucket (the city's MinIO, a cloud bucket) through boto3, so several
  app processes on several machines share the files. Configured by environment variables:
  ``ATTACHMENT_STORAGE=s3``, ``S3_BUCKET``, ``S3_ENDPOINT_URL`` (MinIO's address; empty for AWS),
  ``S3_REGION``, ``S3_ACCESS_KEY_ID``/``S3_SECRET_ACCESS_KEY`` (or boto3's usual credentials),
  ``S3_PREFIX`` (a folder inside the bucket).

Keys are made here (``new_key``); nobody else names a stored object. Deleting after a database
change waits for the commit (``delete_after_commit``), and objects written during a transaction
that rolls back are removed again, so storage and database do not drift apart.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path

from flask import current_app
from sqlalchemy import event
from sqlalchemy.orm import Session

CHUNK = 256 * 1024


class StorageError(RuntimeError):
    """The storage could not be reached or refused the operation (message in Chinese)."""


def new_key() -> str:
    """A random object name (128 bits), spread over 256 folders: ab/ab12…"""
    token = secrets.token_hex(16)
    return f"{token[:2]}/{token}"


class LocalStorage:
    name = "local"

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise StorageError("附件存储键无效")
        return path

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(path.name + f".{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)

    def read(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise StorageError("附件文件不存在（可能已被删除）") from None

    def stream(self, key: str) -> Iterator[bytes]:
        try:
            handle = self._path(key).open("rb")
        except FileNotFoundError:
            raise StorageError("附件文件不存在（可能已被删除）") from None

        def chunks():
            with handle:
                while block := handle.read(CHUNK):
                    yield block

        return chunks()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def keys(self) -> Iterator[str]:
        if not self.root.is_dir():
            return
        for path in self.root.rglob("*"):
            if path.is_file() and not path.name.endswith(".tmp"):
                yield path.relative_to(self.root).as_posix()

    def describe(self) -> str:
        return f"本地磁盘 {self.root}"


class S3Storage:
    name = "s3"

    def __init__(
        self, bucket: str, *, endpoint_url=None, region=None, access_key=None, secret_key=None, prefix=""
    ):
        import boto3
        from botocore.config import Config

        if not bucket:
            raise StorageError("已选择对象存储（ATTACHMENT_STORAGE=s3），但未设置 S3_BUCKET")
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.endpoint_url = endpoint_url or None
        self.client = boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=region or "us-east-1",
            aws_access_key_id=access_key or None,
            aws_secret_access_key=secret_key or None,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},  # MinIO and most S3-compatible servers
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=5,
                read_timeout=30,
            ),
        )

    def _key(self, key: str) -> str:
        return self.prefix + key

    def _call(self, method, **kwargs):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, method)(Bucket=self.bucket, **kwargs)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NotFound"):
                raise StorageError("附件文件不存在（可能已被删除）") from None
            if code == "NoSuchBucket":
                raise StorageError(f"对象存储中没有名为 {self.bucket} 的存储桶") from None
            raise StorageError("对象存储拒绝了请求，请检查访问密钥与权限") from None
        except BotoCoreError:
            raise StorageError("无法连接对象存储，请稍后重试或联系管理员") from None

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self._call("put_object", Key=self._key(key), Body=data, ContentType=content_type)

    def read(self, key: str) -> bytes:
        return self._call("get_object", Key=self._key(key))["Body"].read()

    def stream(self, key: str) -> Iterator[bytes]:
        body = self._call("get_object", Key=self._key(key))["Body"]

        def chunks():
            try:
                yield from body.iter_chunks(CHUNK)
            finally:
                body.close()

        return chunks()

    def exists(self, key: str) -> bool:
        try:
            self._call("head_object", Key=self._key(key))
        except StorageError:
            return False
        return True

    def delete(self, key: str) -> None:
        self._call("delete_object", Key=self._key(key))

    def keys(self) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for item in page.get("Contents", []):
                yield item["Key"][len(self.prefix) :]

    def create_bucket(self) -> None:
        self._call("create_bucket")

    def describe(self) -> str:
        where = self.endpoint_url or "AWS S3"
        return f"对象存储 {where} 存储桶 {self.bucket}" + (f" 前缀 {self.prefix}" if self.prefix else "")


def mirror(store, target: str | os.PathLike) -> tuple[int, int]:
    """Copy every object of ``store`` missing from the folder ``target`` there: (copied, already there).

    Objects never change once written, so an object already in the folder is the same object."""
    root = Path(target)
    copied = kept = 0
    for key in store.keys():  # noqa: SIM118 (a storage, not a dict)
        path = root / key
        if path.is_file():
            kept += 1
            continue
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(path.name + ".part")
        with tmp.open("wb") as out:
            for block in store.stream(key):
                out.write(block)
        os.replace(tmp, path)
        copied += 1
    return copied, kept


def from_config(config) -> LocalStorage | S3Storage:
    kind = (config.get("ATTACHMENT_STORAGE") or "local").lower()
    if kind == "local":
        return LocalStorage(config["ATTACHMENT_DIR"])
    if kind == "s3":
        return S3Storage(
            config.get("S3_BUCKET") or "",
            endpoint_url=config.get("S3_ENDPOINT_URL"),
            region=config.get("S3_REGION"),
            access_key=config.get("S3_ACCESS_KEY_ID"),
            secret_key=config.get("S3_SECRET_ACCESS_KEY"),
            prefix=config.get("S3_PREFIX") or "",
        )
    raise StorageError(f"ATTACHMENT_STORAGE 只能是 local 或 s3，当前为 {kind}")


def for_app(app) -> LocalStorage | S3Storage:
    """The app's storage, built once from its configuration."""
    storage = app.extensions.get("attachment_storage")
    if storage is None:
        storage = from_config(app.config)
        app.extensions["attachment_storage"] = storage
    return storage


def reset(app) -> None:
    """Forget the built storage (after its configuration changed)."""
    app.extensions.pop("attachment_storage", None)


def current() -> LocalStorage | S3Storage:
    return for_app(current_app._get_current_object())


# --- keeping storage and database together ------------------------------------------------

_WRITTEN = "storage_written"
_TO_DELETE = "storage_to_delete"


def put_in_transaction(session: Session, key: str, data: bytes, content_type: str) -> None:
    """Write an object that a row of this transaction will point at; a rollback removes it again."""
    storage = current()
    storage.put(key, data, content_type)
    session.info.setdefault(_WRITTEN, []).append((storage, key))


def delete_after_commit(session: Session, keys: Iterable[str]) -> None:
    """Delete objects once the transaction that stopped pointing at them has committed."""
    storage = current()
    session.info.setdefault(_TO_DELETE, []).extend((storage, key) for key in keys if key)


@event.listens_for(Session, "after_commit")
def _after_commit(session):
    session.info.pop(_WRITTEN, None)
    for storage, key in session.info.pop(_TO_DELETE, []):
        try:
            storage.delete(key)
        except StorageError:
            current_app.logger.warning("attachment object %s could not be deleted", key)


@event.listens_for(Session, "after_transaction_end")
def _after_transaction_end(session, transaction):
    if transaction.parent is not None or transaction.nested:
        return  # a savepoint: the outer transaction decides
    # Still listed here: the transaction ended without a commit (rollback or close).
    session.info.pop(_TO_DELETE, None)
    for storage, key in session.info.pop(_WRITTEN, []):
        with contextlib.suppress(StorageError):
            storage.delete(key)


__all__ = [
    "LocalStorage",
    "S3Storage",
    "StorageError",
    "current",
    "delete_after_commit",
    "for_app",
    "from_config",
    "mirror",
    "new_key",
    "put_in_transaction",
    "reset",
]
