"""Reading resource properties without crashing on what preview cannot know.

What a policy receives:

- ``pulumi preview``: the SDK wraps properties in proxies that raise
  ``UnknownValueError`` when a value is not known yet (an id of a resource
  still to be created); the engine sends secrets marked, and the SDK hands
  them to ``Analyze`` *unwrapped* (plain values);
- the offline plan (``azml plan``): unknown values are ``"[unknown]"`` and
  secrets ``"[secret]"``;
- remediation (and tests): secrets may arrive as ``pulumi_policy.Secret``.

:func:`normalize` turns any of these into plain dicts, lists and scalars in
which an unknown leaf is :data:`UNKNOWN` and a marked secret is a
``pulumi_policy.Secret`` around its normalized value. :func:`get` then walks a
dotted path and answers a value, :data:`UNKNOWN` or :data:`MISSING`. Checks
skip a property whose value is :data:`UNKNOWN`: only known bad values are
reported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Iterator

from pulumi_policy import Secret
from pulumi_policy import proxy as _proxy

try:  # pulumi's own marker for unknowns (pulumi.output.Unknown)
    from pulumi.output import Unknown as _PulumiUnknown
except ImportError:  # pragma: no cover - pulumi always ships it
    _PulumiUnknown = ()  # type: ignore[assignment]

PLAN_UNKNOWN = "[unknown]"
PLAN_SECRET = "[secret]"

_SENTINELS = frozenset(
    {
        _proxy.UNKNOWN_BOOLEAN_VALUE,
        _proxy.UNKNOWN_NUMBER_VALUE,
        _proxy.UNKNOWN_STRING_VALUE,
        _proxy.UNKNOWN_ARRAY_VALUE,
        _proxy.UNKNOWN_ASSET_VALUE,
        _proxy.UNKNOWN_ARCHIVE_VALUE,
        _proxy.UNKNOWN_OBJECT_VALUE,
        PLAN_UNKNOWN,
    }
)


class _Marker:
    """A falsy singleton that prints as its name."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name

    def __bool__(self) -> bool:
        return False


UNKNOWN: Any = _Marker("<unknown>")
"""A value that is not known during preview."""
MISSING: Any = _Marker("<missing>")
"""A property that is not set."""


def is_unknown(value: Any) -> bool:
    if value is UNKNOWN:
        return True
    if isinstance(value, str):
        return value in _SENTINELS
    return bool(_PulumiUnknown) and isinstance(value, _PulumiUnknown)


def is_secret(value: Any) -> bool:
    """A value marked secret (a plain secret value is indistinguishable: see module doc)."""
    return isinstance(value, Secret) or value == PLAN_SECRET


_SCALARS = (float, int, bool, type(None))


def normalize(value: Any) -> Any:
    """Plain Python data from SDK proxies, plan marks and raw inputs."""
    # Fast paths (exact types): the SDK's proxies read through their targets
    # (an unknown sentinel there is what the proxy would raise on), plain
    # containers and scalars. Anything else takes the general path below.
    kind = type(value)
    if kind is _proxy._DictProxy or kind is _proxy._ListProxy:
        value = value["__target"]
        kind = type(value)
    if kind is dict:
        return {key: normalize(item) for key, item in value.items()}
    if kind is list:
        return [normalize(item) for item in value]
    if kind is str:
        return UNKNOWN if value in _SENTINELS else Secret(value) if value == PLAN_SECRET else value
    if kind in _SCALARS:
        return value
    if isinstance(value, Secret):
        return Secret(normalize(value.value))
    if is_unknown(value):
        return UNKNOWN
    if isinstance(value, str):
        return Secret(value) if value == PLAN_SECRET else value
    if isinstance(value, Mapping):
        result: dict[str, Any] = {}
        for key in list(value):
            try:
                item = value[key]
            except _proxy.UnknownValueError:
                result[key] = UNKNOWN
                continue
            except KeyError:
                continue
            result[key] = normalize(item)
        return result
    if isinstance(value, (bytes, bytearray)):
        return value
    if isinstance(value, Sequence):
        items = []
        for index in range(len(value)):
            try:
                items.append(normalize(value[index]))
            except _proxy.UnknownValueError:
                items.append(UNKNOWN)
        return items
    return value


def unwrap(value: Any) -> Any:
    while isinstance(value, Secret):
        value = value.value
    return value


def get(data: Any, path: str | Sequence[Any], *, keep_secret: bool = False) -> Any:
    """``data`` at a dotted ``path`` (integers index lists): the value,
    :data:`UNKNOWN` if it or a container on the way is unknown, or
    :data:`MISSING`."""
    keys = path.split(".") if isinstance(path, str) else list(path)
    current = data
    for key in keys:
        current = unwrap(current)
        if current is UNKNOWN:
            return UNKNOWN
        if isinstance(current, Mapping):
            if key not in current:
                return MISSING
            current = current[key]
        elif isinstance(current, list) and (isinstance(key, int) or (isinstance(key, str) and key.isdigit())):
            index = int(key)
            if not -len(current) <= index < len(current):
                return MISSING
            current = current[index]
        else:
            return MISSING
    if current is None:
        return MISSING
    return current if keep_secret else unwrap(current)


def known(value: Any) -> bool:
    return value is not UNKNOWN and value is not MISSING


def has_unknown(value: Any) -> bool:
    """Whether ``value`` is or contains an unknown."""
    value = unwrap(value)
    if value is UNKNOWN:
        return True
    if isinstance(value, Mapping):
        return any(has_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(has_unknown(v) for v in value)
    return False


def strings(value: Any) -> Iterator[str]:
    """Every known string inside ``value``."""
    value = unwrap(value)
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def as_bool(value: Any) -> Any:
    """True/False for a known boolean (or its string form), else the marker or MISSING."""
    value = unwrap(value)
    if value is UNKNOWN or value is MISSING:
        return value
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return MISSING


def as_number(value: Any) -> Any:
    """A float for a known number (or numeric string), else the marker or MISSING.
    Numbers cross the wire as protobuf doubles: 2 arrives as 2.0."""
    value = unwrap(value)
    if value is UNKNOWN or value is MISSING:
        return value
    if isinstance(value, bool):
        return MISSING
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return MISSING
    return MISSING


def same(value: Any, expected: str) -> bool:
    """Case-insensitive equality of a known string with ``expected``."""
    value = unwrap(value)
    return isinstance(value, str) and value.lower() == expected.lower()


def one_of(value: Any, allowed: Sequence[str]) -> bool:
    value = unwrap(value)
    return isinstance(value, str) and value.lower() in {a.lower() for a in allowed}


def show(value: Any) -> str:
    """A value as a violation message shows it (secrets never)."""
    if isinstance(value, Secret) or value == PLAN_SECRET:
        return "[secret]"
    if value is MISSING:
        return "not set"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str):
        return repr(value)
    return repr(value)
