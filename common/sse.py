"""Server-sent events as text (https://html.spec.whatwg.org/#server-sent-events):
what a browser's ``EventSource`` parses. No framework here; the gateway's
stream routes write these strings.

    >>> event("windows", '{"items": []}', event_id="7")
    'id: 7\\nevent: windows\\ndata: {"items": []}\\n\\n'
    >>> comment("ping")
    ': ping\\n\\n'
"""


def event(name, data, event_id=None):
    """One event; ``data`` is text (JSON here), one ``data:`` line per line of it."""
    lines = []
    if event_id is not None:
        lines.append("id: {}".format(event_id))
    lines.append("event: {}".format(name))
    lines.extend("data: {}".format(line) for line in str(data).split("\n"))
    return "\n".join(lines) + "\n\n"


def comment(text):
    """A comment line: ignored by ``EventSource``, it keeps idle connections (and
    the proxies between) alive, and proves the client is still there."""
    return ": {}\n\n".format(text)


def retry(milliseconds):
    """How long a browser waits before it reconnects after losing the stream."""
    return "retry: {}\n\n".format(int(milliseconds))
