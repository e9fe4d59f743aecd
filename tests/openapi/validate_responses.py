#!/usr/bin/env python3
"""Validates real answers of the server against its own OpenAPI document.

    validate_responses.py DOCUMENT.json EXCHANGES.json

DOCUMENT.json is what GET /api/schema/ served; EXCHANGES.json a list of
{"method", "path" (with its query), "status", "headers", "body_base64"}
recorded by the golden walk (tests/api/golden.rs). Each answer goes through
openapi-core (an independent implementation of OpenAPI 3.1: its own path
matching, parameter and schema validation): the status must be documented
for the operation, the content type must be one it lists, the body must
match the schema and documented response headers their schemas. Objects
are closed first (`additionalProperties: false` where the document lists
the properties), so a field the server sends but the document does not
declare is a failure too.

Exchanges the document cannot describe are counted, not judged: a path no
route serves and a method the route refuses (405).
Prints one line per failure and a summary; exits 1 on any failure.
"""

import base64
import json
import sys
from urllib.parse import parse_qsl, urlsplit

from openapi_core import OpenAPI
from openapi_core.templating.paths.exceptions import (
    OperationNotFound,
    PathNotFound,
    ServerNotFound,
)
from openapi_core.testing import MockRequest, MockResponse

HOST = "http://testserver"


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1], encoding="utf-8") as f:
        document = json.load(f)
    with open(sys.argv[2], encoding="utf-8") as f:
        exchanges = json.load(f)
    # Relative server URLs resolve against the request's host.
    document["servers"] = [{"url": HOST}]
    # Every field the server sends must be declared: objects are closed.
    close_objects(document)
    openapi = OpenAPI.from_dict(document)

    checked = 0
    undocumented = 0
    failures = []
    for exchange in exchanges:
        method = exchange["method"].lower()
        url = urlsplit(exchange["path"])
        path = url.path
        headers = {k: v for k, v in exchange["headers"].items()}
        content_type = headers.get("content-type", "")
        body = base64.b64decode(exchange["body_base64"])
        request = MockRequest(
            HOST,
            method,
            path,
            args=dict(parse_qsl(url.query, keep_blank_values=True)),
        )
        response = MockResponse(
            body,
            status_code=exchange["status"],
            headers=headers,
            content_type=content_type.split(";")[0].strip(),
        )
        label = f"{exchange['method']} {exchange['path']} -> {exchange['status']}"
        try:
            openapi.validate_response(request, response)
            checked += 1
        except (PathNotFound, OperationNotFound, ServerNotFound):
            undocumented += 1
        except Exception as error:  # every other finding is a failure
            failures.append(f"{label}: {describe(error)}")
    for failure in failures:
        print("FAIL", failure)
    print(
        f"openapi-core: {checked} answers match the document, "
        f"{len(failures)} do not; {undocumented} exchanges have no documented operation"
    )
    if checked == 0:
        print("FAIL: nothing was checked", file=sys.stderr)
        return 1
    return 1 if failures else 0


def close_objects(node, inside_all_of=False):
    """Adds `additionalProperties: false` to every object schema that lists
    its properties and says nothing of others (not inside `allOf`, whose
    parts each see only their own properties)."""
    if isinstance(node, dict):
        if (
            "properties" in node
            and "additionalProperties" not in node
            and not inside_all_of
        ):
            node["additionalProperties"] = False
        for key, value in node.items():
            close_objects(value, inside_all_of or key == "allOf")
    elif isinstance(node, list):
        for value in node:
            close_objects(value, inside_all_of)


def describe(error: Exception) -> str:
    """The error with its causes (openapi-core nests schema errors)."""
    parts = [f"{type(error).__name__}: {error}"]
    cause = error.__cause__
    while cause is not None:
        parts.append(f"{type(cause).__name__}: {cause}")
        for inner in getattr(cause, "schema_errors", []) or []:
            parts.append(f"  {inner.message} at {list(inner.absolute_path)}")
        cause = cause.__cause__
    return " <- ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
