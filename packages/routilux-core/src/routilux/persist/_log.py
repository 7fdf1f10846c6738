"""
The checkpoint log of the SQL stores: every checkpoint of a job as a row, whole or as a
delta, compressed; how a job is rebuilt at any checkpoint, folded, pruned and forked.

A job's log is a run of rows ``(seq, kind, codec, body, crc, raw_size, status,
created_at)``: a ``full`` row holds a whole ``routilux.job_state`` document, a ``delta``
row a ``routilux.job_state_delta`` from the row before it. The job row says where the
newest full row is (``full_seq``), how many bytes of deltas follow it (``delta_bytes``)
and the CRC-32 of the newest row's JSON (``last_crc``). A body is the row's JSON
compressed with zlib (``codec`` ``zlib``), a delta's usually with the JSON of the delta
before it as the compression dictionary (``zlib+prev``: consecutive deltas are alike, so
one costs about what its new data costs), or plain UTF-8 JSON (``json``: the checkpoints
an older schema held).

When the deltas after the newest full row exceed :data:`FOLD_RATIO` times its size, the
next checkpoint is written whole: loading reads one full row and a bounded run of deltas,
and the bytes written stay within a small multiple of the job's size.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Mapping, Sequence
from typing import Any, Final, Protocol

from routilux.codec._deltas import apply_deltas, is_delta
from routilux.codec._values import dumps_strict
from routilux.exceptions import JobStoreError
from routilux.persist._protocols import CheckpointInfo
from routilux.persist._rows import decode_failure


__all__ = [
    "DEFAULT_KEEP",
    "FOLD_RATIO",
    "CheckpointLog",
    "Tx",
]

FOLD_RATIO: Final = 1
"""A checkpoint is written whole once the deltas after the last whole one (as JSON) would
exceed this many times its size."""

DEFAULT_KEEP: Final = 100
"""The checkpoints a store keeps of a completed or cancelled job, by default (a running,
paused or failed job keeps all of its checkpoints)."""

_PRUNED: Final = frozenset(("completed", "cancelled"))


class Tx(Protocol):
    """
    One transaction of a SQL store, written with ``?`` placeholders.
    """

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run a query; return its rows."""

    def run(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        """Run a write; return its row count."""


class CheckpointLog:
    """
    The checkpoint log of one SQL store (see the module's documentation).

    Args:
        job_lock: What a store's query of one job row appends to lock it for the
            transaction (``" FOR UPDATE"`` in PostgreSQL, ``""`` in SQLite, whose write
            transactions lock the database).
        keep: The checkpoints kept of a completed or cancelled job (``None``: all); a
            running, paused or failed job keeps all of its checkpoints.
    """

    def __init__(self, job_lock: str, keep: int | None) -> None:
        self.job_lock = job_lock
        self.keep = keep
        # Per job, the seq and JSON of the last delta this store wrote: the compression
        # dictionary of the next one.
        self._last: dict[str, tuple[int, bytes]] = {}

    def forget(self, job_id: str) -> None:
        """
        Drop what the log remembers of ``job_id`` (a deleted job).
        """
        self._last.pop(job_id, None)

    # -- writing --------------------------------------------------------------------

    def save(
        self, tx: Tx, job_id: str, document: Mapping[str, Any], head: Sequence[Any]
    ) -> tuple[int, int, int, int] | None:
        """
        In the checkpoint's transaction, ``head`` being the job row's ``(checkpoint_seq,
        full_seq, full_bytes, delta_bytes, last_crc)``: write ``document`` (a whole job or
        a delta) as the next row of the log. Return the job row's new ``(full_seq,
        full_bytes, delta_bytes, last_crc)``, or ``None`` when a delta does not follow the
        stored checkpoint (nothing is written then).

        Raises:
            SerializationError: The document cannot be written as strict JSON.
            JobStoreError: The log cannot be read back to fold it (a damaged row).
        """
        stored, full_seq, full_bytes, delta_bytes, last_crc = head
        seq = int(document.get("checkpoint_seq") or 0)
        status = str(document.get("status") or "")
        text = dumps_strict(document, "state").encode()
        delta = is_delta(document)
        if delta:
            if full_seq is None or document.get("base_seq") != stored:
                return None
            status = str(document.get("set", {}).get("status") or "")
            if delta_bytes + len(text) > FOLD_RATIO * full_bytes:
                folded = self._state(tx, job_id, stored, full_seq)
                apply_deltas(folded, [json.loads(text)])
                text = dumps_strict(folded, "state").encode()
                delta = False
        crc = zlib.crc32(text)
        if delta:
            last = self._last.get(job_id)
            if last is not None and last[0] == stored and zlib.crc32(last[1]) == last_crc:
                codec, body = "zlib+prev", _compress(text, 6, last[1])
            else:
                codec, body = "zlib", _compress(text, 6)
            self._last[job_id] = (seq, text)
        else:
            codec, body = "zlib", _compress(text, 1)
            self._last.pop(job_id, None)
        tx.run(
            "INSERT INTO routilux_checkpoints (job_id, seq, kind, status, codec, body, crc, "
            "raw_size, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                job_id,
                seq,
                "delta" if delta else "full",
                status,
                codec,
                body,
                crc,
                len(text),
                time.time(),
            ),
        )
        if status in _PRUNED:
            self.prune(tx, job_id, status)
        if delta:
            return int(full_seq), int(full_bytes), int(delta_bytes) + len(text), crc
        return seq, len(text), 0, crc

    def prune(self, tx: Tx, job_id: str, status: str) -> int:
        """
        Delete the checkpoints of a completed or cancelled job beyond the newest
        :attr:`keep` ones (the whole checkpoint the oldest kept one is rebuilt from stays
        too). Return how many rows went.
        """
        if self.keep is None or status not in _PRUNED:
            return 0
        nth = tx.rows(
            "SELECT seq FROM routilux_checkpoints WHERE job_id = ? ORDER BY seq DESC "
            "LIMIT 1 OFFSET ?",
            (job_id, max(self.keep, 1) - 1),
        )
        if not nth:
            return 0
        base = _full_before(tx, job_id, int(nth[0][0]))
        if base is None:
            return 0
        return tx.run(
            "DELETE FROM routilux_checkpoints WHERE job_id = ? AND seq < ?", (job_id, base)
        )

    def fork(
        self, tx: Tx, job_id: str, seq: int, fork_id: str, delta: Mapping[str, Any]
    ) -> tuple[dict[str, Any], tuple[int, int, int, int]]:
        """
        In the fork's transaction: start the log of job ``fork_id`` with checkpoint ``seq``
        of ``job_id`` and ``delta`` (a delta from it: the fork's own id, status and
        data). The rows checkpoint ``seq`` is rebuilt from are copied as they are stored,
        none decoded or encoded again, so a fork costs one rebuild, whatever the job's
        size; they are the fork's base, not its checkpoints (see :meth:`infos`). Return
        the fork's document and its job row's ``(full_seq, full_bytes, delta_bytes,
        last_crc)``.

        Raises:
            JobStoreError: A row of the log is damaged; the message names the job and the
                checkpoint.
        """
        full_seq = _full_before(tx, job_id, seq)
        if full_seq is None:
            raise _damaged(job_id, seq, "no whole checkpoint precedes it")
        document = self._state(tx, job_id, seq, full_seq)
        text = dumps_strict(delta, "fork").encode()
        apply_deltas(document, [json.loads(text)])
        tx.run(
            "INSERT INTO routilux_checkpoints (job_id, seq, kind, status, codec, body, crc, "
            "raw_size, created_at) SELECT ?, seq, kind, status, codec, body, crc, raw_size, "
            "created_at FROM routilux_checkpoints WHERE job_id = ? AND seq >= ? AND seq <= ?",
            (fork_id, job_id, full_seq, seq),
        )
        sizes = tx.rows(
            "SELECT sum(CASE WHEN seq = ? THEN raw_size ELSE 0 END), "
            "sum(CASE WHEN seq = ? THEN 0 ELSE raw_size END) FROM routilux_checkpoints "
            "WHERE job_id = ?",
            (full_seq, full_seq, fork_id),
        )
        full_bytes, delta_bytes = (int(n) for n in sizes[0])
        crc = zlib.crc32(text)
        tx.run(
            "INSERT INTO routilux_checkpoints (job_id, seq, kind, status, codec, body, crc, "
            "raw_size, created_at) VALUES (?, ?, 'delta', ?, 'zlib', ?, ?, ?, ?)",
            (
                fork_id,
                document["checkpoint_seq"],
                str(document.get("status") or ""),
                _compress(text, 6),
                crc,
                len(text),
                time.time(),
            ),
        )
        self._last[fork_id] = (int(document["checkpoint_seq"]), text)
        return document, (full_seq, full_bytes, delta_bytes + len(text), crc)

    # -- reading --------------------------------------------------------------------

    def state(self, tx: Tx, job_id: str, seq: int | None = None) -> dict[str, Any] | None:
        """
        The job's document at checkpoint ``seq`` (by default its newest), rebuilt from the
        log; ``None`` when the job has no checkpoint (at or before ``seq``).

        Raises:
            JobStoreError: A row of the log is damaged; the message names the job and the
                checkpoint.
        """
        upto = seq
        if upto is None:
            newest = tx.rows(
                "SELECT max(seq) FROM routilux_checkpoints WHERE job_id = ?", (job_id,)
            )
            if newest[0][0] is None:
                return None
            upto = int(newest[0][0])
        full_seq = _full_before(tx, job_id, upto)
        if full_seq is None:
            return None
        return self._state(tx, job_id, upto, full_seq)

    def _state(self, tx: Tx, job_id: str, seq: int, full_seq: int) -> dict[str, Any]:
        # The document at ``seq``: the full row ``full_seq`` and the deltas after it.
        rows = tx.rows(
            "SELECT seq, kind, codec, body, crc FROM routilux_checkpoints "
            "WHERE job_id = ? AND seq >= ? AND seq <= ? ORDER BY seq",
            (job_id, full_seq, seq),
        )
        previous = b""
        document: dict[str, Any] | None = None
        deltas: list[Any] = []
        for row_seq, kind, codec, body, crc in rows:
            text = _decompress(job_id, row_seq, codec, bytes(body), previous, crc)
            previous = text
            try:
                data = json.loads(text)
            except (ValueError, RecursionError) as exc:
                raise _damaged(job_id, row_seq, decode_failure(exc)) from None
            if kind == "full" and document is None:
                document = data
            elif kind == "delta" and document is not None:
                deltas.append(data)
            else:
                raise _damaged(job_id, row_seq, f"a {kind} row where none was expected")
        if document is None or int(rows[-1][0]) != seq:
            raise _damaged(job_id, seq, "the checkpoint is not in the log")
        try:
            return apply_deltas(document, deltas)
        except JobStoreError:
            raise
        except Exception as exc:
            raise _damaged(job_id, seq, str(exc)) from exc

    def infos(self, tx: Tx, job_id: str, since: int = 0) -> list[CheckpointInfo]:
        """
        The job's checkpoints in the log from ``since`` on (a fork's first own one: the
        rows before it are its base), oldest first.
        """
        return [
            CheckpointInfo(
                seq=int(r[0]),
                status=str(r[1]),
                kind=str(r[2]),
                size=int(r[3]),
                created_at=float(r[4]),
            )
            for r in tx.rows(
                "SELECT seq, status, kind, raw_size, created_at FROM routilux_checkpoints "
                "WHERE job_id = ? AND seq >= ? ORDER BY seq",
                (job_id, since),
            )
        ]


def _full_before(tx: Tx, job_id: str, seq: int) -> int | None:
    # The newest whole checkpoint of the job at or before ``seq``: where a rebuild starts.
    found = tx.rows(
        "SELECT max(seq) FROM routilux_checkpoints WHERE job_id = ? AND kind = 'full' AND seq <= ?",
        (job_id, seq),
    )
    return None if not found or found[0][0] is None else int(found[0][0])


def _compress(text: bytes, level: int, dictionary: bytes = b"") -> bytes:
    packer = zlib.compressobj(level, zdict=dictionary) if dictionary else zlib.compressobj(level)
    return packer.compress(text) + packer.flush()


def _decompress(job_id: str, seq: int, codec: str, body: bytes, previous: bytes, crc: int) -> bytes:
    # The JSON of one row; its CRC checked.
    try:
        if codec == "json":
            text = body
        elif codec == "zlib":
            text = zlib.decompress(body)
        elif codec == "zlib+prev":
            unpacker = zlib.decompressobj(zdict=previous)
            text = unpacker.decompress(body) + unpacker.flush()
        else:
            raise _damaged(job_id, seq, f"unknown codec {codec!r}")
    except zlib.error as exc:
        raise _damaged(job_id, seq, f"cannot decompress it ({exc})") from None
    if codec != "json" and zlib.crc32(text) != int(crc):
        raise _damaged(job_id, seq, "its checksum does not match")
    return text


def _damaged(job_id: str, seq: int, why: str) -> JobStoreError:
    msg = f"checkpoint {seq} of job {job_id!r} is damaged in the store: {why}"
    return JobStoreError(msg, job_id=job_id)
