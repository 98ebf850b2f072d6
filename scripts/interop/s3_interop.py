#!/usr/bin/env python3
"""Independent S3 client for the object storage interop tests (boto3/botocore).

Presigned URLs made by Tessera's providers are sent by botocore's own HTTP session (the
stack boto3 sends every request with), and the S3 provider's objects are checked with a
boto3 client holding real credentials. Each subcommand prints one JSON object.

Subcommands:
  check          import boto3, print its version
  send FILE      FILE: {"method", "url", "headers": {name: value}, "body_b64"?};
                 print {"status", "body_b64"}: the presigned request sent by botocore
  head FILE      FILE: {"endpoint", "region", "access_key", "secret_key", "bucket", "key"};
                 print {"size", "etag", "content_type"} from boto3's head_object
  put FILE       FILE: the same plus "body_b64" and "content_type"; boto3's put_object;
                 print {"etag"}
"""

import base64
import json

import oracle_cli  # beside this script


def load(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def cmd_check(_args):
    import boto3

    return {"boto3": boto3.__version__}


def cmd_send(args):
    from botocore.awsrequest import AWSRequest
    from botocore.httpsession import URLLib3Session

    request = load(args[0])
    body = base64.b64decode(request.get("body_b64", ""))
    prepared = AWSRequest(
        method=request["method"],
        url=request["url"],
        headers=request.get("headers", {}),
        data=body if request["method"] == "PUT" else None,
    ).prepare()
    response = URLLib3Session().send(prepared)
    return {
        "status": response.status_code,
        "body_b64": base64.b64encode(response.content).decode(),
    }


def client(request):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=request["endpoint"],
        region_name=request["region"],
        aws_access_key_id=request["access_key"],
        aws_secret_access_key=request["secret_key"],
        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"),
    )


def cmd_head(args):
    request = load(args[0])
    head = client(request).head_object(Bucket=request["bucket"], Key=request["key"])
    return {
        "size": head["ContentLength"],
        "etag": head["ETag"].strip('"'),
        "content_type": head.get("ContentType"),
    }


def cmd_put(args):
    request = load(args[0])
    answer = client(request).put_object(
        Bucket=request["bucket"],
        Key=request["key"],
        Body=base64.b64decode(request["body_b64"]),
        ContentType=request["content_type"],
    )
    return {"etag": answer["ETag"].strip('"')}


if __name__ == "__main__":
    oracle_cli.run(
        {"check": cmd_check, "send": cmd_send, "head": cmd_head, "put": cmd_put}, __doc__
    )
