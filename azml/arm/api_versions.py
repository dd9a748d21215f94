"""ARM ``apiVersion`` of an azure-native resource type, read from the SDK.

Every azure-native resource class documents the Azure REST API version it
calls, e.g. ``Uses Azure REST API version 2024-01-01. In version 2.x of the
Azure Native provider, it used API version 2022-09-01.`` The sentence lives in
the docstrings of the ``@overload`` signatures of ``__init__`` (the class
itself has no docstring), so we read those, and fall back to the class source.
The first version named is the one this SDK release uses.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import re
import typing

_VERSION = re.compile(r"Uses Azure REST API version (\d{4}-\d{2}-\d{2}(?:-[A-Za-z]+)?)")
_PREFIX = "azure-native:"


class ApiVersionError(LookupError):
    pass


def _sdk_class(token: str) -> type:
    if not token.startswith(_PREFIX) or token.count(":") != 2:
        raise ApiVersionError(f"{token} is not an azure-native resource type token")
    _, module, class_name = token.split(":")
    try:
        package = importlib.import_module(f"pulumi_azure_native.{module}")
        return getattr(package, class_name)
    except (ImportError, AttributeError) as error:
        raise ApiVersionError(f"{token}: no class {class_name} in pulumi_azure_native.{module} ({error})") from None


def _docstrings(cls: type) -> typing.Iterator[str]:
    init = cls.__dict__.get("__init__")
    if init is not None:
        for overload in typing.get_overloads(init):
            if overload.__doc__:
                yield overload.__doc__
        if init.__doc__:
            yield init.__doc__
    if cls.__doc__:
        yield cls.__doc__
    try:
        yield inspect.getsource(cls)
    except (OSError, TypeError):
        pass


@functools.cache
def api_version(token: str) -> str:
    """The REST API version (ARM ``apiVersion``) the installed azure-native SDK uses for ``token``,
    e.g. ``api_version("azure-native:storage:StorageAccount") == "2024-01-01"``."""
    cls = _sdk_class(token)
    for text in _docstrings(cls):
        match = _VERSION.search(text)
        if match:
            return match.group(1)
    raise ApiVersionError(f"{token}: the SDK class {cls.__qualname__} states no 'Uses Azure REST API version'")
