"""Starts moto_server with Kinesis shard writes serialised.

moto's `Shard.put_record` is not safe for concurrency (its source says so): two
PutRecords served at once can take the same sequence number, and one record then replaces
the other, so a test that counts records could blame the agent for moto's loss. This
launcher wraps it in one process-wide lock, then runs moto's own server entry point with
the same arguments (`-H HOST -p PORT`).
"""
import sys
import threading

from moto.kinesis import models
from moto.server import main

_lock = threading.Lock()
_put_record = models.Shard.put_record


def _serialised_put_record(self, *args, **kwargs):
    with _lock:
        return _put_record(self, *args, **kwargs)


models.Shard.put_record = _serialised_put_record

if __name__ == "__main__":
    sys.argv[0] = "moto_server"
    sys.exit(main())
