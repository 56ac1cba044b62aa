"""Prophesee `.raw` recordings: a text header of `%` lines, then the sensor's EVT 3.0 words."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from hand_pose_core.errors import InputError
from hand_pose_core.events.arrays import Events
from hand_pose_core.events.decode import DecodeReport, EventDecoder

FORMAT_LINE = re.compile(r"^format\s+(\w+)((?:;\w+=[^;]*)*)$")
GEOMETRY_LINE = re.compile(r"^geometry\s+(\d+)x(\d+)$")


@dataclass
class RawHeader:
    width: int
    height: int
    data_offset: int  # where the words start


def read_raw_header(data: bytes, where: Path) -> RawHeader:
    """The header's sensor size; the words start after the `% end` line or the last `%` line."""
    offset, fields, encoding = 0, {}, None
    while data.startswith(b"%", offset):
        end = data.find(b"\n", offset)
        if end < 0:
            raise InputError(f"{where}: the header never ends (no newline after a % line)")
        line = data[offset + 1 : end].decode("ascii", errors="replace").strip()
        offset = end + 1
        if line == "end":
            break
        if format_match := FORMAT_LINE.match(line):
            encoding = format_match.group(1).upper()
            fields.update(item.split("=", 1) for item in format_match.group(2).split(";") if item)
        elif geometry := GEOMETRY_LINE.match(line):
            fields.setdefault("width", geometry.group(1))
            fields.setdefault("height", geometry.group(2))
        elif line.startswith("evt "):
            encoding = encoding or ("EVT3" if line.split()[1] == "3.0" else f"EVT {line.split()[1]}")
    if encoding != "EVT3":
        raise InputError(f"{where}: not an EVT 3.0 recording (its header says {encoding or 'no format'})")
    try:
        return RawHeader(int(fields["width"]), int(fields["height"]), offset)
    except (KeyError, ValueError) as exc:
        raise InputError(f"{where}: the header gives no sensor width and height") from exc


def read_raw_file(path: Path) -> tuple[Events, DecodeReport]:
    """All events of a `.raw` recording (t: sensor time in ns) and what decoding met."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    header = read_raw_header(data, path)
    decoder = EventDecoder()
    packet = SimpleNamespace(
        encoding="evt3",
        events=data[header.data_offset :],
        width=header.width,
        height=header.height,
        time_base=0,
        is_bigendian=False,
    )
    return decoder.decode(packet), decoder.report
