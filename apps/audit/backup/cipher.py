"""Encrypting a backup archive with a passphrase: AES-256-GCM in chunks, scrypt-derived key.

The file is a header, then the archive in chunks of CHUNK bytes, each sealed on its own
(the STREAM construction): a chunk's nonce is a random per-file prefix, the chunk's
number and a flag marking the last chunk, and the header is authenticated with every
chunk. So a file of any size streams through a small buffer, and a chunk that was
changed, moved, dropped or cut off the end fails its tag. The header also holds a tag
over nothing, which tells a wrong passphrase apart from a damaged file.

    header: MAGIC (8) | salt (16) | log2(n), r, p (3) | nonce prefix (7) | key check (16)
    chunk:  length of what follows (4, big-endian) | ciphertext and tag (length)
"""

from __future__ import annotations

import os
import struct
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

MAGIC = b"ATPBKE\x00\x01"
CHUNK = 1 << 20
# scrypt at n=2**15, r=8 takes 32 MiB and about 0.1 s: once per file, costly to guess.
LOG2_N, R, P = 15, 8, 1
MIN_PASSPHRASE_CHARS = 16
_HEADER = struct.Struct(">8s16sBBB7s")
_LAST, _MORE, _CHECK = 1, 0, 2


class WrongKey(Exception):
    """The passphrase is not the one the archive was encrypted with."""


class Damaged(Exception):
    """The encrypted file was changed, cut short or is not an encrypted archive."""


def is_encrypted(path: os.PathLike | str) -> bool:
    with open(path, "rb") as fh:
        return fh.read(len(MAGIC)) == MAGIC


def check_passphrase(passphrase: str) -> None:
    if len(passphrase) < MIN_PASSPHRASE_CHARS:
        raise ValueError(
            f"the backup encryption key must be at least {MIN_PASSPHRASE_CHARS} characters"
        )


def _key(passphrase: str, salt: bytes, log2n: int, r: int, p: int) -> AESGCM:
    derived = Scrypt(salt=salt, length=32, n=1 << log2n, r=r, p=p).derive(passphrase.encode())
    return AESGCM(derived)


def _nonce(prefix: bytes, number: int, flag: int) -> bytes:
    return prefix + struct.pack(">IB", number, flag)


class Writer:
    """A file-like object that writes what it is given, encrypted, to `target`.

    The last chunk is only known at close, so up to one chunk is held back until then.
    """

    def __init__(self, target: BinaryIO, passphrase: str) -> None:
        check_passphrase(passphrase)
        salt, self._prefix = os.urandom(16), os.urandom(7)
        self._header = _HEADER.pack(MAGIC, salt, LOG2_N, R, P, self._prefix)
        self._aead = _key(passphrase, salt, LOG2_N, R, P)
        self._target = target
        self._number = 0
        self._pending = bytearray()
        check = self._aead.encrypt(_nonce(self._prefix, 0, _CHECK), b"", self._header)
        target.write(self._header + check)

    def write(self, data: bytes) -> int:
        self._pending += data
        while len(self._pending) > CHUNK:
            self._seal(bytes(self._pending[:CHUNK]), _MORE)
            del self._pending[:CHUNK]
        return len(data)

    def close(self) -> None:
        self._seal(bytes(self._pending), _LAST)
        self._pending.clear()

    def _seal(self, chunk: bytes, flag: int) -> None:
        sealed = self._aead.encrypt(_nonce(self._prefix, self._number, flag), chunk, self._header)
        self._target.write(struct.pack(">I", len(sealed)) + sealed)
        self._number += 1


def encrypt(source: BinaryIO, target: BinaryIO, passphrase: str) -> None:
    """Write `source` encrypted under `passphrase` to `target`."""
    writer = Writer(target, passphrase)
    while block := source.read(CHUNK):
        writer.write(block)
    writer.close()


def decrypt(source: BinaryIO, target: BinaryIO, passphrase: str) -> None:
    """Write what `source` holds to `target`; raises WrongKey or Damaged."""
    header = source.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise Damaged("the file is too short to be an encrypted backup")
    magic, salt, log2n, r, p, prefix = _HEADER.unpack(header)
    if magic != MAGIC:
        raise Damaged("the file is not an encrypted ATP backup")
    if not (10 <= log2n <= 22 and 1 <= r <= 32 and 1 <= p <= 16):
        raise Damaged("the encrypted backup's header is damaged")
    aead = _key(passphrase, salt, log2n, r, p)
    try:
        aead.decrypt(_nonce(prefix, 0, _CHECK), source.read(16), header)
    except InvalidTag:
        raise WrongKey("wrong backup encryption key or passphrase") from None
    number = 0
    pending = _read_chunk(source)
    while pending is not None:
        following = _read_chunk(source)
        flag = _LAST if following is None else _MORE
        try:
            target.write(aead.decrypt(_nonce(prefix, number, flag), pending, header))
        except InvalidTag:
            raise Damaged(f"chunk {number} of the encrypted backup is damaged or missing") from None
        if flag == _LAST:
            return
        number += 1
        pending = following
    raise Damaged("the encrypted backup holds no data")


def _read_chunk(source: BinaryIO) -> bytes | None:
    size = source.read(4)
    if not size:
        return None
    if len(size) < 4:
        raise Damaged("the encrypted backup is cut short")
    (length,) = struct.unpack(">I", size)
    if length > CHUNK + 16:
        raise Damaged("the encrypted backup is damaged (a chunk is too long)")
    data = source.read(length)
    if len(data) < length:
        raise Damaged("the encrypted backup is cut short")
    return data
