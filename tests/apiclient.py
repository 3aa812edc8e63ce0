"""A small synchronous JSON client for the operator API, as a billing system would use it."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from prometheus_client.parser import text_string_to_metric_families


@dataclass
class Reply:
    status: int
    body: Any
    headers: http.client.HTTPMessage
    raw: bytes


class Api:
    def __init__(self, base_url: str, token: str | None = None) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.token = token

    def as_(self, token: str | None) -> Api:
        clone = Api(f"http://{self.host}:{self.port}/", token)
        return clone

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        content_type: str = "application/json",
        query: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        hdrs = dict(headers or {})
        if self.token:
            hdrs["Authorization"] = f"Bearer {self.token}"
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if data is not None:
            hdrs["Content-Type"] = content_type
        if query:
            path += "?" + urlencode(query)
        conn.request(method, path, body=data, headers=hdrs)
        response = conn.getresponse()
        payload = response.read()
        conn.close()
        try:
            parsed = json.loads(payload) if payload else None
        except ValueError:
            parsed = None
        return Reply(response.status, parsed, response.headers, payload)

    def get(self, path: str, **kw: Any) -> Reply:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return self.request("POST", path, body, **kw)

    def patch(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return self.request("PATCH", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> Reply:
        return self.request("DELETE", path, **kw)


def readyz_status(api_url: str) -> int:
    """The HTTP status of the daemon's ``/readyz`` (200 ready, 503 not)."""
    try:
        with urllib.request.urlopen(api_url + "readyz", timeout=5) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code


def readyz(api_url: str) -> tuple[int, dict[str, Any]]:
    """The daemon's ``/readyz``: its status and its JSON body (why, when not ready)."""
    try:
        with urllib.request.urlopen(api_url + "readyz", timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def store_refusals(api_url: str) -> dict[tuple[str, str], float]:
    """``acsd_store_refusals_total`` from ``/metrics``: (listener, cause) -> count, the
    causes counted at least once."""
    with urllib.request.urlopen(api_url + "metrics", timeout=10) as answer:
        text = answer.read().decode()
    found: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "acsd_store_refusals_total" and s.value:
                found[(s.labels["listener"], s.labels["cause"])] = s.value
    return found
