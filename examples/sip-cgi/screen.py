#!/usr/bin/env python3
"""Caller screening as a SIP-CGI script (RFC 3050).

For each INVITE the server runs this script with the request on stdin and its header fields in SIP_* variables.
A caller whose From address is on the blocklist is refused with 403; every other call is proxied to one fixed
target (a reception desk, say), marked with an X-Screened header. Other methods get no output, which asks the
server for its default action: it routes them as if there were no script.

Settings come from the environment the server is configured to add:
  SCREEN_BLOCKLIST  file of user@host addresses, one a line, '#' starts a comment (default: blocklist.txt here)
  SCREEN_TARGET     where allowed calls go (default: sip:reception@127.0.0.1)
"""
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BLOCKLIST = os.environ.get("SCREEN_BLOCKLIST", os.path.join(HERE, "blocklist.txt"))
TARGET = os.environ.get("SCREEN_TARGET", "sip:reception@127.0.0.1")


def caller(from_value):
    """user@host of a From value (name-addr or addr-spec), lower-cased, without scheme, port or parameters."""
    bracketed = re.search(r"<([^>]*)>", from_value)
    uri = bracketed.group(1) if bracketed else from_value.split(";", 1)[0]
    uri = re.sub(r"^\s*sips?:", "", uri.strip(), flags=re.IGNORECASE)
    uri = re.split(r"[;?]", uri, 1)[0]
    user, at, host = uri.rpartition("@")
    host = re.sub(r":\d+$", "", host)
    return (user + at + host).lower()


def blocklist():
    try:
        with open(BLOCKLIST, encoding="utf-8") as f:
            return {line.split("#", 1)[0].strip().lower() for line in f} - {""}
    except FileNotFoundError:
        return set()


def main():
    if os.environ.get("REQUEST_METHOD") != "INVITE":
        return
    if caller(os.environ.get("SIP_FROM", "")) in blocklist():
        sys.stdout.write("SIP/2.0 403 Forbidden\r\n\r\n")
    else:
        sys.stdout.write("CGI-PROXY-REQUEST %s SIP/2.0\r\nX-Screened: passed\r\n\r\n" % TARGET)


main()
