"""wald for Python: a client of the wald write-ahead log server over gRPC.

    import wald
    client = wald.Client("127.0.0.1:7070")
    result = client.append([(b"user-1", b"hello")], sync=True)   # from any number of threads: one AppendStream
    page = client.read(result.first_offset, limit=100)
    for event in client.tail(0):
        ...

The generated stubs live in wald.v1 (and google.rpc), made from proto/ by ``npm run gen``.
"""
from wald.append_pipeline import AppendCounters, AppendResult
from wald.client import Client, KeyValue, ReadResult, Record, TailEvent
from wald.errors import WalError

__all__ = ["AppendCounters", "AppendResult", "Client", "KeyValue", "ReadResult", "Record", "TailEvent", "WalError"]
