"""How fast evt3 packets decode to numpy arrays (`EventDecoder`), in events per second.

    .venv/bin/python bench/events_decode.py   # [--events 3000000] [--rounds 5]

The packets of the two real recordings in data/events (metavision_driver bags) are repeated, in order,
until they hold at least `--events` change events, then decoded two ways: packet by packet as a node
gets them (one `EventDecoder.decode` call per packet, 1 to 7 kB each), and as one recorded stream
(`EventDecoder.decode_all`, which joins the packets' words into one call, as `hand-pose events` does).
Each way runs `--rounds` times after a warm-up; prints the median rate and the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "hand_pose_ros"))

from hand_pose_core.bags.takes import BagContents, read_messages  # noqa: E402
from hand_pose_core.events.decode import EventDecoder  # noqa: E402

RECORDINGS = ("test_events_1", "evt3_trigger")


def recorded_packets(name: str) -> list[SimpleNamespace]:
    """The recording's packets as plain objects (bytes, not the reader's arrays)."""
    path = ROOT / "data" / "events" / name
    return [
        SimpleNamespace(
            encoding=m.encoding,
            events=m.events.tobytes(),
            width=m.width,
            height=m.height,
            time_base=m.time_base,
            is_bigendian=m.is_bigendian,
        )
        for _, _, m in read_messages(path, {"/event_camera/events"}, BagContents(path))
    ]


def decode_packets(packets: list[SimpleNamespace]) -> int:
    decoder = EventDecoder()
    for packet in packets:
        decoder.decode(packet)
    return decoder.report.events


def decode_all(packets: list[SimpleNamespace]) -> int:
    return len(EventDecoder().decode_all(packets))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print("| recording | events | packet by packet (M events/s) | one stream (M events/s) |")
    print("|---|---|---|---|")
    for name in RECORDINGS:
        packets = recorded_packets(name)
        per_copy = decode_packets(packets)
        packets = packets * -(-args.events // per_copy)
        rates = {}
        for way, decode in (("packets", decode_packets), ("stream", decode_all)):
            count = decode(packets)  # warm-up
            seconds = []
            for _ in range(args.rounds):
                start = time.perf_counter()
                decode(packets)
                seconds.append(time.perf_counter() - start)
            rates[way] = count / statistics.median(seconds) / 1e6
        print(f"| {name} | {count:,} | {rates['packets']:.1f} | {rates['stream']:.1f} |")
    print(f"load average (1 min) while measuring: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
