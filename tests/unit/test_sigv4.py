"""Our SigV4 signer against botocore's S3SigV4Auth and AWS's published S3 examples."""

from __future__ import annotations

from datetime import UTC, datetime
from unittest import mock

import botocore.auth
import botocore.credentials
import pytest
from botocore.awsrequest import AWSRequest
from botocore.config import Config

from voxshift.stores.objects.sigv4 import (
    EMPTY_SHA256,
    UNSIGNED_PAYLOAD,
    Signer,
    StaticCredentials,
    canonical_query,
    quote_path,
)

WHEN = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
KEYS = (
    "audio/agent_demo/2026/03/04/" + "ab" * 32 + ".ogg",
    "temp/a b+c%20d%2Fe #f?g=h&i;j,k:l@m$n!o'p(q)r*s[t]u{v}w|x^y`z\\~.-_",
    "audio/агент/голосовое сообщение 100% + ещё.ogg" + "x" * 60,
    "emoji/🎙️/ß/日本語/€.wav",
    "dots/./../a//b/",
    "k",
)


def botocore_headers(
    method: str,
    url: str,
    headers: dict[str, str],
    credentials: StaticCredentials,
    region: str,
    params: list[tuple[str, str]] | None = None,
) -> dict[str, str]:
    request = AWSRequest(method=method, url=url, headers=dict(headers), params=dict(params or []))
    # Over https with a Content-MD5 botocore would send UNSIGNED-PAYLOAD on its own; this asks for it
    # on every request, as our transport does.
    request.context["client_config"] = Config(s3={"payload_signing_enabled": False})
    creds = botocore.credentials.Credentials(
        credentials.access_key, credentials.secret_key, credentials.token
    )
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=WHEN.replace(tzinfo=None)):
        botocore.auth.S3SigV4Auth(creds, "s3", region).add_auth(request)
    return {name.lower(): value for name, value in request.headers.items()}


def ours(
    method: str,
    endpoint: str,
    path: str,
    headers: dict[str, str],
    credentials: StaticCredentials,
    region: str,
    params: list[tuple[str, str]] | None = None,
) -> tuple[str, dict[str, str]]:
    """The URL we would send and our signed headers."""
    host = endpoint.split("://", 1)[1]
    query = canonical_query(params or [])
    signed = Signer(region).sign(method, host, path, query, headers, credentials, WHEN)
    return f"{endpoint}{path}" + (f"?{query}" if query else ""), signed


CREDENTIALS = (
    StaticCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
    StaticCredentials("ASIATEMP", "c2VjcmV0/with+slash", token="FQoGZXIvYXdzE//temporary+token=="),
)


@pytest.mark.parametrize("credentials", CREDENTIALS, ids=["static", "session-token"])
@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize(
    ("method", "headers"),
    [
        ("GET", {}),
        ("HEAD", {}),
        ("DELETE", {}),
        (
            "PUT",
            {
                "Content-Type": "audio/ogg",
                "Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg==",
                "x-amz-meta-agent-id": "agent_demo",
                "x-amz-meta-text_length": "17",
                "x-amz-meta-original.name": "=?UTF-8?B?0LPQvtC70L7RgS5vZ2c=?=",
                "x-amz-meta-spaced": "a  b   c",
            },
        ),
    ],
)
@pytest.mark.parametrize(
    "endpoint", ["https://s3.eu-central-1.amazonaws.com", "http://127.0.0.1:8333", "https://[::1]:9000"]
)
def test_object_requests_sign_like_botocore(
    method: str, headers: dict[str, str], key: str, credentials: StaticCredentials, endpoint: str
) -> None:
    region = "eu-central-1"
    url, signed = ours(method, endpoint, "/voice-v2-files/" + quote_path(key), headers, credentials, region)
    expected = botocore_headers(method, url, headers, credentials, region)
    assert signed["authorization"] == expected["authorization"]
    for name in ("x-amz-date", "x-amz-content-sha256", "x-amz-security-token"):
        assert signed.get(name) == expected.get(name), name


@pytest.mark.parametrize("credentials", CREDENTIALS, ids=["static", "session-token"])
@pytest.mark.parametrize(
    "params",
    [
        [("list-type", "2"), ("prefix", ""), ("max-keys", "1000")],
        [("list-type", "2"), ("prefix", "audio/агент 1+2%/"), ("max-keys", "7"), ("encoding-type", "url")],
        [
            ("list-type", "2"),
            ("continuation-token", "1/2+3=4 ~x"),
            ("prefix", "temp/"),
            ("max-keys", "10"),
        ],
    ],
)
def test_list_queries_sign_like_botocore(
    params: list[tuple[str, str]], credentials: StaticCredentials
) -> None:
    endpoint = "http://localhost:9000"
    url, signed = ours("GET", endpoint, "/voice-files", {}, credentials, "us-east-1", params)
    # botocore encodes and sorts the parameters itself: an independent check of canonical_query.
    expected = botocore_headers("GET", f"{endpoint}/voice-files", {}, credentials, "us-east-1", params)
    assert signed["authorization"] == expected["authorization"]
    assert url.split("?", 1)[1] == canonical_query(params)


def test_path_and_query_encoding() -> None:
    assert quote_path("a b+c%d#e?f/g~h.i-j_k") == "a%20b%2Bc%25d%23e%3Ff/g~h.i-j_k"
    assert quote_path("€/ß") == "%E2%82%AC/%C3%9F"
    assert canonical_query([("prefix", "a/b c"), ("list-type", "2"), ("a", "")]) == (
        "a=&list-type=2&prefix=a%2Fb%20c"
    )
    assert canonical_query([("continuation-token", "1/2+3=4 ~x")]) == "continuation-token=1%2F2%2B3%3D4%20~x"
    with pytest.raises(UnicodeEncodeError):
        quote_path("lone \udc80 surrogate")


# AWS's worked examples, "Signature Calculations for the Authorization Header: Transferring Payload in
# a Single Chunk" (Amazon S3 API reference): the documented signatures, computed independently of us.
AWS = StaticCredentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
AWS_WHEN = datetime(2013, 5, 24, tzinfo=UTC)
AWS_HOST = "examplebucket.s3.amazonaws.com"


def test_aws_example_get_object() -> None:
    signed = Signer("us-east-1").sign(
        "GET", AWS_HOST, "/test.txt", "", {"Range": "bytes=0-9"}, AWS, AWS_WHEN, EMPTY_SHA256
    )
    assert signed["authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    )


def test_aws_example_list_objects() -> None:
    query = canonical_query([("prefix", "J"), ("max-keys", "2")])
    signed = Signer("us-east-1").sign("GET", AWS_HOST, "/", query, {}, AWS, AWS_WHEN, EMPTY_SHA256)
    assert query == "max-keys=2&prefix=J"
    assert signed["authorization"].endswith(
        "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
    )


def test_signing_key_is_derived_once_per_day_and_secret() -> None:
    signer = Signer("us-east-1")
    first = signer.signing_key("secret", "20260304")
    assert signer.signing_key("secret", "20260304") is first
    assert signer.signing_key("secret", "20260305") != first
    assert signer.signing_key("other", "20260305") != signer.signing_key("secret", "20260305")


def test_unsigned_payload_is_the_default() -> None:
    signed = Signer("us-east-1").sign("PUT", "h", "/b/k", "", {}, AWS, AWS_WHEN)
    assert signed["x-amz-content-sha256"] == UNSIGNED_PAYLOAD
    assert "x-amz-security-token" not in signed
