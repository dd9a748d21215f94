"""One :class:`~azml_policies.topology.Stack` per ``AnalyzeStack`` call,
shared by the pack's stack policies.

The SDK's ``AnalyzeStack`` runs the stack policies one after the other and
builds, for each, a fresh ``StackValidationArgs``: a new ``resources`` list of
new ``PolicyResource`` objects whose ``props`` are new proxies over a new
deserialization of the same request. Nothing the SDK hands a policy is shared
between the policies of one call, and a key on what they hold (the URNs) is
not enough: two calls in one pack process (a preview, then the update with
real outputs; tests) carry the same URNs with different properties.

What *is* shared is the gRPC request: the ``request`` argument of the SDK's
``AnalyzeStack`` frame on the call stack. :func:`stack_of` keys its one-entry
cache on that object's identity (it keeps a reference, so the id cannot be
reused) and on the URNs in order. Called in any other way (tests build
``StackValidationArgs`` themselves), or should the SDK change shape, it finds
no request and builds a new :class:`Stack` each time, as before.
"""

from __future__ import annotations

import sys
import threading
from typing import Any, Sequence

from .topology import Stack

_SDK_FUNCTION = "AnalyzeStack"
_SDK_MODULE = "pulumi_policy"
_MAX_DEPTH = 8  # our validate <- the policy's validate <- AnalyzeStack

_lock = threading.Lock()
_last: tuple[Any, tuple[str, ...], Stack] | None = None


def _analyze_stack_request() -> Any:
    """The request of the SDK's ``AnalyzeStack`` this call runs under, or None."""
    frame = sys._getframe(2)
    for _ in range(_MAX_DEPTH):
        if frame is None:
            return None
        code = frame.f_code
        if code.co_name == _SDK_FUNCTION and _SDK_MODULE in code.co_filename:
            return frame.f_locals.get("request")
        frame = frame.f_back
    return None


def stack_of(resources: Sequence[Any]) -> Stack:
    """The :class:`Stack` of ``resources`` (``StackValidationArgs.resources``),
    built once per ``AnalyzeStack`` request."""
    global _last
    request = _analyze_stack_request()
    if request is None:
        return Stack(resources)
    urns = tuple(r.urn for r in resources)
    with _lock:
        cached = _last
    if cached is not None and cached[0] is request and cached[1] == urns:
        return cached[2]
    stack = Stack(resources)
    with _lock:
        _last = (request, urns, stack)
    return stack
