"""The request guard in front of Bolt reads a body of unknown length only up to its cap (its
behaviour over HTTP is tests/test_hardening.py's)."""

from __future__ import annotations

import io

from bot.runtime.wsgi import SlackRequestGuard


def test_a_body_of_unknown_length_is_read_only_up_to_the_cap():
    class Endless(io.RawIOBase):
        read_bytes = 0

        def read(self, size=-1):
            size = 65536 if size is None or size < 0 else size
            self.read_bytes += size
            return b"x" * size

    stream = Endless()
    answers = []
    guard = SlackRequestGuard(lambda environ, start: [b"bolt"], limit=1000)
    body = guard(
        {"REQUEST_METHOD": "POST", "wsgi.input": stream},
        lambda status, headers: answers.append(status),
    )
    assert answers == ["413 Payload Too Large"] and body == [b"payload too large"]
    assert stream.read_bytes <= 1001
