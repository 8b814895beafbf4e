"""Helpers the Rust integration tests run through the test venv's python (boto3 and
aws-kinesis-agg). Usage:

  moto_helper.py firehose-create ENDPOINT STREAM BUCKET   # S3 bucket + delivery stream
  moto_helper.py s3-read ENDPOINT BUCKET                  # JSON list of base64 objects
  moto_helper.py deaggregate < records.json               # reference de-aggregation

`records.json` is a JSON list of {"shard": id, "data": base64, "partitionKey": key,
"sequenceNumber": n}; the output is the list of user records, each with its shard,
base64 data, partition key, explicit hash key and whether it came from an aggregate.
"""
import base64
import json
import sys

import boto3


def client(service, endpoint):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def firehose_create(endpoint, stream, bucket):
    client("s3", endpoint).create_bucket(Bucket=bucket)
    client("firehose", endpoint).create_delivery_stream(
        DeliveryStreamName=stream,
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/firehose",
            "BucketARN": "arn:aws:s3:::" + bucket,
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 60},
        },
    )


def s3_read(endpoint, bucket):
    s3 = client("s3", endpoint)
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            out.append({"key": obj["Key"], "data": base64.b64encode(body).decode()})
    json.dump(out, sys.stdout)


def deaggregate():
    from aws_kinesis_agg.deaggregator import iter_deaggregate_records

    out = []
    for r in json.load(sys.stdin):
        lam = {
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "sequenceNumber": r["sequenceNumber"],
                "approximateArrivalTimestamp": 0,
                "partitionKey": r["partitionKey"],
                "data": r["data"],
            },
            "eventSource": "aws:kinesis",
        }
        for u in iter_deaggregate_records(lam):
            k = u["kinesis"]
            data = k["data"]
            if isinstance(data, bytes):
                data = data.decode()
            out.append(
                {
                    "shard": r["shard"],
                    "data": data,
                    "partitionKey": k["partitionKey"],
                    "explicitHashKey": k.get("explicitHashKey"),
                    "aggregated": bool(k.get("aggregated", False)),
                }
            )
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "firehose-create":
        firehose_create(*sys.argv[2:5])
    elif cmd == "s3-read":
        s3_read(*sys.argv[2:4])
    elif cmd == "deaggregate":
        deaggregate()
    else:
        sys.exit("unknown command " + cmd)
