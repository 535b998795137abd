"""The smoke cases of the wald package against a running server, for test/integration/python-client.test.ts.

Usage: PYTHONPATH=clients/python python3 smoke.py HOST:PORT TAIL_TOTAL

Appends, reads, gets, stats and a failed conditional append, printing one JSON line
{"phase": "calls", ...}; then tails from offset 0 and prints {"phase": "tailing"} once it has
the first three records (the test restarts the server and appends more then), and
{"phase": "tail", "offsets": [...], "values": [...]} once it has TAIL_TOTAL records.
"""
import json
import sys

import wald


def emit(report):
    print(json.dumps(report), flush=True)


def main():
    address, tail_total = sys.argv[1], int(sys.argv[2])
    client = wald.Client(address, initial_backoff=0.05, max_backoff=0.5, max_retries=100)
    out = {"phase": "calls"}

    first = client.append([(b"user-1", b"v1"), {"value": "second", "headers": {"lang": "py"}}, ("user-1", "v1b")], sync=True, expected_offset=0)
    out["append"] = first._asdict()
    try:
        client.append([(None, b"stale")], expected_offset=0)
        out["stale"] = None
    except wald.WalError as error:
        out["stale"] = {"code": error.code.name, "reason": error.reason, "domain": error.domain, "metadata": error.metadata}

    page = client.read(0, limit=10)
    out["read"] = {
        "records": [
            {"offset": r.offset, "key": None if r.key is None else r.key.decode(), "value": r.value.decode(), "headers": {k: v.decode() for k, v in r.headers.items()}, "type": r.type}
            for r in page.records
        ],
        "next_offset": page.next_offset,
        "high_watermark": page.high_watermark,
    }
    got = client.get(b"user-1")
    out["get"] = None if got is None else {"value": got.value.decode(), "offset": got.offset}
    out["get_missing"] = client.get("nobody")
    stats = client.stats()
    out["stats"] = {k: stats[k] for k in ("entry_count", "latest_offset", "high_watermark", "next_offset", "write_state")}
    emit(out)

    offsets, values = [], []
    announced = False
    tail = client.tail(0)
    for event in tail:
        for record in event.records:
            offsets.append(record.offset)
            values.append(record.value.decode())
        if not announced and len(offsets) >= 3:
            emit({"phase": "tailing", "offsets": offsets})
            announced = True
        if len(offsets) >= tail_total:
            break
    tail.close()
    emit({"phase": "tail", "offsets": offsets, "values": values})
    client.close()


if __name__ == "__main__":
    main()
