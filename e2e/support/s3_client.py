"""Runs one job with the real boto3 S3 client, for e2e/support/s3-clients.ts.

Reads the job as JSON from its first argument or, without one, from stdin; prints the result as JSON on stdout; a
failure is a traceback on stderr and exit 1. Credentials come from the environment only (AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY), never from the job. Run with PYTHONPATH set to the pinned boto3 folder of e2e/tools/install.sh
(the cluster's boto3 image has it so, and runs this script in a Pod).

Jobs (every one has "operation", "endpoint", "region", "bucket", and "caFile" or null; an "endpoint" or "region" of
null is boto3's own from the environment, AWS_ENDPOINT_URL and AWS_DEFAULT_REGION, as a configured Pod gives them):
  download  "key", "file", "chunkBytes", "concurrency": boto3's download_file, multipart when the object is larger
            than chunkBytes -> {"sha256", "bytes"}
  list      "prefix", "pageSize", "delimiter" or null: the list_objects_v2 paginator -> {"keys", "commonPrefixes", "pages"}
  head      "key": head_object -> {"contentLength", "eTag", "lastModified", "contentType", "metadata"}
Every result also has "versions" (boto3, botocore, s3transfer) and "requests": each HTTP request the client sent, in
order of sending, with the headers that say what kind of read it was.
"""
import hashlib
import json
import sys

import boto3
import botocore
import s3transfer
from boto3.s3.transfer import TransferConfig
from botocore.config import Config


def make_client(job, requests):
    config = Config(
        s3={"addressing_style": "path"},
        # One attempt: a failing request fails the job instead of being retried out of sight.
        retries={"total_max_attempts": 1},
        connect_timeout=10,
        read_timeout=60,
        max_pool_connections=max(10, job.get("concurrency") or 0),
    )
    verify = job.get("caFile") or True
    if job.get("region") is not None:
        config = config.merge(Config(region_name=job["region"]))
    client = boto3.session.Session().client("s3", endpoint_url=job.get("endpoint"), config=config, verify=verify)

    def record(request, event_name, **_):
        headers = request.headers
        sent = {"operation": event_name.rsplit(".", 1)[-1], "method": request.method, "url": request.url}
        for name, field in (("Range", "range"), ("If-Match", "ifMatch"), ("x-amz-checksum-mode", "checksumMode")):
            value = headers.get(name)
            if value is not None:
                sent[field] = value.decode() if isinstance(value, bytes) else value
        requests.append(sent)

    client.meta.events.register("before-send.s3", record)
    return client


def download(client, job):
    config = TransferConfig(
        multipart_threshold=job["chunkBytes"],
        multipart_chunksize=job["chunkBytes"],
        max_concurrency=job["concurrency"],
        use_threads=True,
        # The classic transfer manager always: the CRT one (chosen on some instance types when awscrt is installed)
        # would make other requests.
        preferred_transfer_client="classic",
    )
    client.download_file(job["bucket"], job["key"], job["file"], Config=config)
    digest = hashlib.sha256()
    size = 0
    with open(job["file"], "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    return {"sha256": digest.hexdigest(), "bytes": size}


def list_all(client, job):
    arguments = {"Bucket": job["bucket"], "Prefix": job["prefix"], "PaginationConfig": {"PageSize": job["pageSize"]}}
    if job.get("delimiter"):
        arguments["Delimiter"] = job["delimiter"]
    keys, common_prefixes, pages = [], [], 0
    for page in client.get_paginator("list_objects_v2").paginate(**arguments):
        pages += 1
        keys.extend(entry["Key"] for entry in page.get("Contents", []))
        common_prefixes.extend(entry["Prefix"] for entry in page.get("CommonPrefixes", []))
    return {"keys": keys, "commonPrefixes": common_prefixes, "pages": pages}


def head(client, job):
    answer = client.head_object(Bucket=job["bucket"], Key=job["key"])
    return {
        "contentLength": answer["ContentLength"],
        "eTag": answer.get("ETag"),
        "lastModified": answer["LastModified"].isoformat(),
        "contentType": answer.get("ContentType"),
        "metadata": answer.get("Metadata", {}),
    }


OPERATIONS = {"download": download, "list": list_all, "head": head}


def main():
    job = json.loads(sys.argv[1]) if len(sys.argv) > 1 else json.load(sys.stdin)
    requests = []
    result = OPERATIONS[job["operation"]](make_client(job, requests), job)
    result["versions"] = {"boto3": boto3.__version__, "botocore": botocore.__version__, "s3transfer": s3transfer.__version__}
    result["requests"] = requests
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
