"""Errors the reasoner reports to its callers, each with a documented exit code.

Exit codes (shared by every command; see `reasoner --help`):
  0  ran; the result is positive (approved, conforms, clean)
  1  ran; the result is negative where the command asks for it (validate: does not conform,
     check: problems found, test: mismatches)
  2  bad input: a case, query, policy id or path the user gave is unusable
  3  bad knowledge base: the ontology, knowledge or a policy pack does not load
  4  internal error
"""

from __future__ import annotations

import re

EXIT_OK = 0
EXIT_NEGATIVE = 1
EXIT_BAD_INPUT = 2
EXIT_BAD_KNOWLEDGE = 3
EXIT_INTERNAL = 4


class ReasonerError(Exception):
    """Base class: `str(error)` is one line that names the file and the place."""

    exit_code = EXIT_INTERNAL

    def __init__(self, message: str, *, source: str | None = None, place: str | None = None):
        self.source = source
        self.place = place
        parts = [p for p in (source, place) if p]
        prefix = ":".join(parts)
        # Every message goes through `redact`: a store URL given as the source or quoted in
        # the message never prints its password or token.
        super().__init__(redact(f"{prefix}: {message}" if prefix else message))


class InputError(ReasonerError):
    """The user's input (case file, FHIR Bundle, query, policy id, path) is unusable."""

    exit_code = EXIT_BAD_INPUT


class KnowledgeError(ReasonerError):
    """The ontology, the knowledge graph or a policy pack does not load or is inconsistent."""

    exit_code = EXIT_BAD_KNOWLEDGE


# A URL's user information (RFC 3986 section 3.2.1: "user:password@"; a lone "token@" is as
# secret) and any query or fragment parameter whose name says it holds a credential.
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<info>[^/?#@\s<>\"']*)@")
_PARAM = re.compile(r"(?P<name>(?:^|[?#&;\s])(?P<key>[A-Za-z0-9_.-]+)=)"
                    r"(?P<value>(?:[^&#;:\s\"'<>]|:(?!\s|$))+)")
#: parameter names (lower case, without "_", "-", ".") that hold a credential
_SECRET_NAMES = {"token", "password", "passwd", "pwd", "secret", "key", "apikey", "auth",
                 "sig", "signature", "credential", "credentials", "sessionid"}
_SECRET_ENDINGS = ("token", "secret", "password", "passwd", "apikey")
_AUTH_HEADER = re.compile(r"\b(?P<kind>Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
REDACTED = "***"


def redact(text: str) -> str:
    """`text` with every secret a store URL or a header can carry replaced by ``***``: the
    password (or a lone token) of ``scheme://user:password@host``, the value of ``#token=``,
    ``?token=``, ``&password=`` and alike, and ``Bearer``/``Basic`` credentials. Every message,
    log and progress line that may quote a store URL goes through this one helper
    (docs/store.md, "Secrets")."""
    if not text:
        return text

    def userinfo(m: re.Match) -> str:
        info = m.group("info")
        user = info.split(":", 1)[0] if ":" in info else ""
        return f"{m.group('scheme')}{user + ':' if user else ''}{REDACTED}@"

    text = _USERINFO.sub(userinfo, str(text))
    text = _PARAM.sub(lambda m: m.group("name") + REDACTED if _secret_name(m.group("key"))
                      else m.group(0), text)
    return _AUTH_HEADER.sub(lambda m: f"{m.group('kind')} {REDACTED}", text)


def _secret_name(name: str) -> bool:
    """Whether a query or fragment parameter `name` holds a credential (token, access_token,
    api-key, client_secret, password, sig, ...); `gsp`, `update`, `graph` do not."""
    lowered = name.lower()
    plain = re.sub(r"[_.-]", "", lowered)
    return (plain in _SECRET_NAMES or plain.endswith(_SECRET_ENDINGS)
            or lowered.endswith(("_key", "-key", ".key")))
