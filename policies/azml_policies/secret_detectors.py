"""The named detectors of ``azml-secret-values``: what a secret looks like by value.

Each :class:`Detector` has a stable id (it appears in every violation and in
the policy's ``disabledDetectors`` config), a title, and a ``find`` function
that answers a *redacted hint* for a string holding that kind of secret (or
None). A hint shows only the structure around the secret (the URL without its
query, the connection string with credential values replaced, a token's type
prefix), never a character of the secret itself.

The detectors look for what Azure and the common issuers put in a credential,
not for "random-looking" text: the plans are full of GUIDs, resource ids,
hashes and embedded config (the monitoring workbook, conda files), and an
entropy guess would flag them. A bare key with no marker (an 88-character
storage key on its own) is caught by its setting's name instead
(``secret-named-setting`` in secret_values.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlsplit

REDACTED = "<redacted>"

# A value that stands for a credential instead of holding one: template
# placeholders, the plan's own marks, masked values.
_PLACEHOLDER = re.compile(
    r"""^\s*(?:|<[^>]*>|\{[^}]*\}|\$\{[^}]*\}|\$\([^)]*\)|%[^%]+%|\*+|x+|\.\.\.|…|\[secret\]|\[unknown\]|null|none)\s*$""",
    re.IGNORECASE,
)


def placeholder(text: str) -> bool:
    return bool(_PLACEHOLDER.match(text.strip().strip("'\"")))


def redacted(text: str) -> str:
    """A stand-in for a whole secret: its length only."""
    return f"{REDACTED} ({len(text)} chars)"


@dataclass(frozen=True)
class Detector:
    id: str
    title: str  # what the value holds, as a message reads it: "holds <title>"
    description: str  # what it matches and why (policies/README.md)
    find: Callable[[str], str | None]  # a redacted hint, or None


# --------------------------------------------------------------------------- private keys

_PRIVATE_KEY = re.compile(r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY( BLOCK)?-----")
_KEY_BODY = re.compile(r"[A-Za-z0-9+/=]{16,}")


def _private_key(text: str) -> str | None:
    match = _PRIVATE_KEY.search(text)
    if not match:
        return None
    body = text[match.end():].split("-----END", 1)[0]
    # A body of base64 lines, not a sentence that names the header.
    if not _KEY_BODY.search(body.replace("\\n", "\n")):
        return None
    return f"{match.group(0)} {REDACTED} ({len(body)} chars)"


# --------------------------------------------------------------------------- shared access signatures

# storage-sas-overview: "sig" is the signature that authorizes the request;
# every SAS also names its version (sv) or expiry (se); Service Bus / Event
# Hubs tokens name the resource (sr) and the key (skn).
_SAS_SIGNATURE = re.compile(r"(?:^|[?&;\s])sig=([A-Za-z0-9%+/=_-]{16,})", re.IGNORECASE)
_SAS_COMPANION = re.compile(r"(?:^|[?&;\s])(?:sv|se|sr|skn|sp|spr)=", re.IGNORECASE)


def _sas(text: str) -> str | None:
    if not _SAS_SIGNATURE.search(text) or not _SAS_COMPANION.search(text):
        return None
    head = text.split("?", 1)[0] if "?" in text else ""
    if head and "://" in head:
        return f"{head}?…sig={REDACTED}"
    return f"a SAS token, sig={REDACTED}"


# --------------------------------------------------------------------------- connection strings

_CONNECTION_PAIR = re.compile(
    r"""(?:^|(?<=[;,?&\s]))\s*(?P<key>[A-Za-z][A-Za-z0-9 _.-]*?)\s*=\s*(?P<value>"[^"]*"|'[^']*'|[^;,&]*)""",
)

#: Connection-string keys that carry an account or access key (Storage and
#: Cosmos DB AccountKey; Service Bus, Event Hubs and IoT Hub SharedAccessKey;
#: SignalR, Web PubSub and Communication Services AccessKey; App
#: Configuration Secret).
KEY_PARTS = frozenset({"accountkey", "sharedaccesskey", "accesskey", "secret", "clientsecret"})
#: Connection-string keys that carry a password (ADO.NET, ODBC and JDBC
#: Password / PWD; Redis "password=").
PASSWORD_PARTS = frozenset({"password", "pwd"})
#: Parts Microsoft documents as identifiers, not secrets: an Application
#: Insights connection string's InstrumentationKey ("Ikey unique identifiers
#: aren't security tokens or security keys, and aren't considered secrets",
#: azure-monitor/app/connection-strings).
NOT_SECRET_PARTS = frozenset({"instrumentationkey", "applicationid", "authorization"})


# libpq's keyword/value form: "host=... user=... password=..." separated by spaces.
_SPACED_PAIR = re.compile(r"""(?:^|(?<=\s))(?P<key>[A-Za-z_]+)=(?P<value>'[^']*'|[^\s]*)""")


def connection_parts(text: str) -> list[tuple[str, str]]:
    """``key=value`` parts of a connection string (``;``, ``,`` or, with
    neither, space separated), keys folded to lower case without spaces;
    empty when ``text`` is not one."""
    if "=" not in text:
        return []
    pattern = _CONNECTION_PAIR if (";" in text or "," in text) else _SPACED_PAIR
    parts = [(m.group("key").replace(" ", "").lower(), m.group("value").strip().strip("'\""))
             for m in pattern.finditer(text)]
    return parts if (len(parts) > 1 or ";" in text) else []


def _masked(text: str, keys: frozenset[str]) -> str:
    def mask(match: re.Match[str]) -> str:
        key = match.group("key").replace(" ", "").lower()
        if key in keys and not placeholder(match.group("value")):
            return match.group(0)[: match.start("value") - match.start()] + REDACTED
        return match.group(0)

    shown = (_CONNECTION_PAIR if (";" in text or "," in text) else _SPACED_PAIR).sub(mask, text)
    return shown if len(shown) <= 160 else shown[:159] + "…"


def _credential_in(keys: frozenset[str]) -> Callable[[str], str | None]:
    def find(text: str) -> str | None:
        if any(key in keys and not placeholder(value) for key, value in connection_parts(text)):
            return _masked(text, keys)
        return None

    return find


# --------------------------------------------------------------------------- URLs with credentials

_URL_USERINFO = re.compile(r"\b(?P<scheme>[a-z][a-z0-9+.-]*)://(?P<user>[^/\s:@?#]+):(?P<password>[^/\s@?#]+)@(?P<host>[^/\s?#]+)", re.IGNORECASE)


def _url_credentials(text: str) -> str | None:
    for match in _URL_USERINFO.finditer(text):
        if not placeholder(match.group("password")):
            return f"{match.group('scheme')}://{match.group('user')}:{REDACTED}@{match.group('host')}"
    return None


# --------------------------------------------------------------------------- tokens

_GITHUB = re.compile(r"(?<![A-Za-z0-9_])(?P<kind>gh[pousr]_|github_pat_)[A-Za-z0-9_]{36,255}(?![A-Za-z0-9_])")
# Entra ID application secrets issued since 2021: three characters, a digit,
# "Q~", then 31 to 34 characters.
_ENTRA_SECRET = re.compile(r"(?<![A-Za-z0-9_~.-])[A-Za-z0-9_~.-]{3}\dQ~[A-Za-z0-9_~.-]{31,34}(?![A-Za-z0-9_~.-])")
# A JSON Web Token: base64url header and claims that both open a JSON object ("eyJ").
_JWT = re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")


def _github(text: str) -> str | None:
    match = _GITHUB.search(text)
    return f"{match.group('kind')}{REDACTED} ({len(match.group(0))} chars)" if match else None


def _entra(text: str) -> str | None:
    match = _ENTRA_SECRET.search(text)
    return redacted(match.group(0)) if match else None


def _jwt(text: str) -> str | None:
    match = _JWT.search(text)
    return f"eyJ…{REDACTED} ({len(match.group(0))} chars)" if match else None


# --------------------------------------------------------------------------- the set, most specific first

DETECTORS: tuple[Detector, ...] = (
    Detector(
        "private-key",
        "a private key",
        "A PEM, OpenSSH or PGP private key block (`-----BEGIN ... PRIVATE KEY-----` followed by key material).",
        _private_key,
    ),
    Detector(
        "sas-token",
        "a shared access signature",
        "A SAS URL or token: a `sig=` signature with its companion parameters (`sv`, `se`, `sr`, `skn`, `sp`) "
        "(storage/common/storage-sas-overview).",
        _sas,
    ),
    Detector(
        "connection-string-key",
        "an access key in a connection string",
        "A connection string carrying a key: `AccountKey=` (Storage, Cosmos DB), `SharedAccessKey=` (Service Bus, "
        "Event Hubs, IoT Hub), `AccessKey=` (SignalR, Web PubSub, Communication Services), `Secret=` (App "
        "Configuration). An Application Insights `InstrumentationKey` is an identifier, not a key.",
        _credential_in(KEY_PARTS),
    ),
    Detector(
        "connection-string-password",
        "a password in a connection string",
        "A connection string carrying a password: `Password=` / `PWD=` (SQL, PostgreSQL, MySQL, ODBC, JDBC) or "
        "Redis `password=`.",
        _credential_in(PASSWORD_PARTS),
    ),
    Detector(
        "url-credentials",
        "a password in a URL",
        "A URL with a password in its user info (`scheme://user:password@host`).",
        _url_credentials,
    ),
    Detector(
        "github-token",
        "a GitHub token",
        "A GitHub personal access, OAuth, app or refresh token (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`, `github_pat_`).",
        _github,
    ),
    Detector(
        "entra-client-secret",
        "an Entra ID client secret",
        "An Entra ID (Azure AD) application client secret in the format issued since 2021 (a digit and `Q~` "
        "after the first three characters).",
        _entra,
    ),
    Detector(
        "jwt",
        "a JSON Web Token",
        "A bearer token (Entra ID access token, Azure ML AMLToken, any JWT): `eyJ...` header and claims.",
        _jwt,
    ),
)

DETECTOR_IDS = tuple(d.id for d in DETECTORS)


def detect(text: str, disabled: frozenset[str] = frozenset()) -> tuple[Detector, str] | None:
    """The first detector that recognises a secret in ``text``, and its hint."""
    for detector in DETECTORS:
        if detector.id in disabled:
            continue
        hint = detector.find(text)
        if hint is not None:
            return detector, hint
    return None


def credential_free(text: str) -> bool:
    """A connection string, URL or Azure resource id that carries no
    credential (identity-based connections, Application Insights connection
    strings, endpoints, Key Vault key ids): a setting named like a secret may
    hold it. Values the detectors recognise are reported before this is asked."""
    text = text.strip()
    if text.lower().startswith("/subscriptions/"):
        return True
    parts = connection_parts(text)
    if parts:
        return all(key not in KEY_PARTS | PASSWORD_PARTS or placeholder(value) for key, value in parts)
    try:
        url = urlsplit(text)
    except ValueError:
        return False
    return bool(url.scheme and url.netloc and not url.password and "sig=" not in url.query.lower())
