"""MCAP bags that say when they are damaged: chunk checksums written, checked on reading, and the
readable part of a damaged or truncated bag kept, with what was lost reported.

rosbags writes every chunk's CRC as 0 ("not computed"), so a flipped byte went unnoticed, and it refuses
a file without its footer (a recorder that was killed). Writing, `add_chunk_checksums` fills the CRCs
in place once the file is complete. Reading, `read_mcap` walks the file's records in order with the
`mcap` library's stream reader: a chunk whose CRC or contents fail is skipped and reported with how
many messages it held and their time range (from the message indexes that follow it), the chunks after
it are still read, and a file that ends early gives everything before the cut.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mcap.exceptions import EndOfFile
from mcap.reader import make_reader
from mcap.records import Channel, Chunk, DataEnd, Message, MessageIndex, Schema
from mcap.stream_reader import StreamReader, breakup_chunk

MAGIC = b"\x89MCAP0\r\n"
CHUNK_OPCODE = 0x06
RECORD_HEADER = struct.Struct("<BQ")  # opcode, length
# A chunk's body: message start and end time, uncompressed size (u64 each), then the CRC (u32).
CRC_OFFSET = 24


def add_chunk_checksums(path: Path) -> int:
    """Fill in the CRC of every uncompressed chunk of the MCAP file at `path`, in place and one chunk at a
    time (before the file is moved where readers see it); returns how many chunks it filled."""
    filled = 0
    with open(path, "r+b") as file:
        size = file.seek(0, 2)
        position = len(MAGIC)
        while position + RECORD_HEADER.size <= size:
            file.seek(position)
            opcode, length = RECORD_HEADER.unpack(file.read(RECORD_HEADER.size))
            body = position + RECORD_HEADER.size
            if opcode == CHUNK_OPCODE:
                file.seek(body + CRC_OFFSET + 4)
                (name_length,) = struct.unpack("<I", file.read(4))
                compression = file.read(name_length)
                records_at = body + CRC_OFFSET + 8 + name_length + 8
                if compression == b"":
                    file.seek(records_at)
                    checksum = zlib.crc32(file.read(body + length - records_at))
                    file.seek(body + CRC_OFFSET)
                    file.write(struct.pack("<I", checksum))
                    filled += 1
            position = body + length
    return filled


@dataclass
class ChunkLoss:
    """A damaged chunk, and the messages it held (counted from the message indexes after it)."""

    chunk: Chunk
    reason: str
    messages: int = 0

    def describe(self, path: Path) -> str:
        return (
            f"{path}: a damaged chunk ({self.reason}): {self.messages} messages from "
            f"{self.chunk.message_start_time} to {self.chunk.message_end_time} ns lost"
        )


def read_mcap(path: Path, topics: set[str], problems: list[str]) -> Iterator[tuple[str, str, int, bytes]]:
    """(topic, message type, log time in ns, CDR) of the chosen topics' messages in file order; damaged
    chunks and an early end are appended to `problems` (the reading goes on past a damaged chunk)."""
    schemas: dict[int, str] = {}
    channels: dict[int, tuple[str, str]] = {}
    loss: ChunkLoss | None = None

    def wanted(records: list) -> Iterator[tuple[str, str, int, bytes]]:
        for record in records:
            if isinstance(record, Schema):
                schemas[record.id] = record.name
            elif isinstance(record, Channel):
                channels[record.id] = (record.topic, schemas.get(record.schema_id, ""))
            elif isinstance(record, Message) and channels.get(record.channel_id, ("",))[0] in topics:
                topic, msgtype = channels[record.channel_id]
                yield topic, msgtype, record.log_time, bytes(record.data)

    with open(path, "rb") as file:
        records = StreamReader(file, emit_chunks=True, validate_crcs=False).records
        while True:
            try:
                record = next(records)
            except StopIteration:
                break
            except Exception as exc:  # a truncated file (no footer) or a damaged record header
                if loss is not None:
                    problems.append(loss.describe(path))
                    loss = None
                why = (
                    "it ends early: no footer"
                    if isinstance(exc, EndOfFile)
                    else f"{type(exc).__name__}: {exc}"
                )
                problems.append(
                    f"{path}: unreadable from byte {file.tell()} on ({why}); what came before is kept"
                )
                break
            if isinstance(record, MessageIndex):
                if loss is not None:
                    loss.messages += len(record.records)
                continue
            if loss is not None:
                problems.append(loss.describe(path))
                loss = None
            if isinstance(record, DataEnd):
                break  # the summary after it repeats what the data section held
            if not isinstance(record, Chunk):
                yield from wanted([record])
                continue
            try:
                inner = breakup_chunk(record, validate_crc=True)
            except Exception as exc:  # a CRC that does not match, or records that do not parse
                loss = ChunkLoss(record, f"{type(exc).__name__}: {exc}")
                continue
            yield from wanted(inner)
    if loss is not None:
        problems.append(loss.describe(path))


def mcap_topics(path: Path) -> dict[str, str]:
    """Topic -> message type of every channel the file declares: from its summary, or, when it has
    none (cut short), from the records as far as they can be read."""
    topics, schemas = {}, {}
    with open(path, "rb") as file:
        try:
            summary = make_reader(file).get_summary()
        except Exception:  # no footer or summary to seek: scan below
            summary = None
        if summary is not None:
            return {c.topic: summary.schemas[c.schema_id].name for c in summary.channels.values()}
        file.seek(0)
        try:
            for record in StreamReader(file).records:
                if isinstance(record, Schema):
                    schemas[record.id] = record.name
                elif isinstance(record, Channel):
                    topics[record.topic] = schemas.get(record.schema_id, "")
        except Exception:  # damage is reported when the messages are read; the channels seen so far stand
            pass
    return topics
