#!/usr/bin/env python3
"""Reads every record of a Kinesis stream (all shards, from TRIM_HORIZON) from a local
emulator, de-aggregates KPL records with the reference de-aggregator (aws-kinesis-agg),
and prints one line per user record: `<shard> <partition key> <data>`.

Usage: kinesis_read.py ENDPOINT STREAM [--count]
"""
import base64
import sys

import boto3
from aws_kinesis_agg.deaggregator import iter_deaggregate_records


def read_all(endpoint, stream):
    kin = boto3.client("kinesis", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    shards = kin.list_shards(StreamName=stream)["Shards"]
    for shard in shards:
        it = kin.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while it:
            resp = kin.get_records(ShardIterator=it, Limit=10000)
            lambda_shaped = [{
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": r["PartitionKey"],
                    "sequenceNumber": r["SequenceNumber"],
                    "data": base64.b64encode(r["Data"]).decode(),
                    "approximateArrivalTimestamp": 0,
                },
                "eventSource": "aws:kinesis",
            } for r in resp["Records"]]
            for user in iter_deaggregate_records(lambda_shaped):
                yield shard["ShardId"], user["kinesis"]["partitionKey"], base64.b64decode(user["kinesis"]["data"])
            if not resp["Records"] and resp.get("MillisBehindLatest", 0) == 0:
                break
            it = resp.get("NextShardIterator")


def main():
    endpoint, stream = sys.argv[1], sys.argv[2]
    records = list(read_all(endpoint, stream))
    if "--count" in sys.argv:
        print(len(records))
        return
    for shard, key, data in records:
        print(f"{shard} {key} {data.decode('utf-8', 'replace').rstrip(chr(10))}")
    print(f"-- {len(records)} user records in stream {stream}")


if __name__ == "__main__":
    main()
