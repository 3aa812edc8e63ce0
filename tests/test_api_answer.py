"""The API's JSON answers (acsd.api.answer): what clients parse, whatever the value."""

from __future__ import annotations

import json

from acsd.api.answer import dumps, json_response


def test_answers_are_json_a_strict_parser_reads():
    data = {"ssid": "Café ☕", "rate": float("nan"), "big": 2**70, 3: "key made text"}
    text = dumps(data).decode("utf-8")
    # NaN is no JSON: a strict parser must read the answer (the standard encoder wrote NaN)
    parsed = json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    assert parsed["big"] == 2**70 and parsed["3"] == "key made text"
    assert parsed["ssid"] == "Café ☕"


def test_json_response_says_json_in_utf_8():
    response = json_response({"a": "é"}, status=201, headers={"Location": "/x"})
    assert response.status == 201 and response.headers["Location"] == "/x"
    assert response.content_type == "application/json" and response.charset == "utf-8"
    assert json.loads(response.body) == {"a": "é"}
