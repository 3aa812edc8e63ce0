"""The wire quirks of real CPEs that a simulated router can show (``acsd sim --quirks``).

Kept apart from the session so that the ``acsd`` command can name them in its help
without importing the HTTP client.
"""

from __future__ import annotations

QUIRKS = {
    "no-cookies": "never send cookies back",
    "cwmp-1-0": "speak urn:dslforum-org:cwmp-1-0 (and fail on any other namespace)",
    "prefix-soap": "SOAP envelope prefix 'soap'",
    "prefix-SOAP-ENV": "SOAP envelope prefix 'SOAP-ENV'",
    "untyped-values": "Values without xsi:type",
    "reused-id": "every message carries cwmp:ID 1, responses included",
    "new-connection": "every message on a new TCP connection (Connection: close)",
    "empty-post-no-length": "the empty POST has neither Content-Length nor Transfer-Encoding",
    "bare-faults": "a refused SetParameterValues names no parameter (no SetParameterValuesFault)",
    "object-faults": "a refused SetParameterValues names the refused parameter's object",
    "soap-faults": "a refused SetParameterValues is a SOAP Fault alone: no CWMP FaultCode",
    "echo-values": "a refused SetParameterValues repeats the refused values in its FaultStrings",
    "latin1-values": "non-ASCII text sent as raw Latin-1 bytes in envelopes labelled UTF-8",
    "small-gpv": "a GetParameterValues of more than 16 names fails 9004 (resources exceeded)",
    "unknown-9003": "a GetParameterValues with a name the router lacks fails 9003, not 9005",
    "unknown-9002": "a GetParameterValues with a name the router lacks fails 9002, not 9005",
}
# "all" cannot have two envelope prefixes, two codes for an unknown name or two forms of a
# refusal at once; SOAP-ENV is the more common prefix in the field. Nor new-connection:
# routers of one address that keep neither cookies nor connections cannot be told apart by
# their empty POSTs, so "all" would fail for any run of more than one router.
ALL_QUIRKS = frozenset(QUIRKS) - {
    "prefix-soap", "unknown-9002", "object-faults", "soap-faults", "new-connection"
}  # fmt: skip


def parse_quirks(text: str | None) -> frozenset[str]:
    """``"no-cookies,cwmp-1-0"`` or ``"all"`` -> the set of quirk names (ValueError if bad)."""
    names: set[str] = set()
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        if item == "all":
            names |= ALL_QUIRKS
        elif item in QUIRKS:
            names.add(item)
        else:
            raise ValueError(f"unknown quirk {item!r} (known: all, {', '.join(QUIRKS)})")
    for pair in (
        ("prefix-soap", "prefix-SOAP-ENV"),
        ("unknown-9003", "unknown-9002"),
        ("bare-faults", "object-faults"),
        ("soap-faults", "object-faults"),
        ("soap-faults", "echo-values"),
    ):
        if set(pair) <= names:
            raise ValueError(f"{pair[0]} and {pair[1]} exclude each other")
    return frozenset(names)
