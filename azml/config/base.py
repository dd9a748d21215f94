"""The base of every config model: camelCase keys, unknown keys refused,
values of their own type.

Strict: a number is a number (``true`` is not 1, ``"3"`` is not 3), a
boolean is a boolean (``"yes"`` is not true), and numbers are finite
(``.inf`` and ``.nan`` are refused) — a stack file arrives in pull requests,
and a lenient reading could turn a gate threshold into "always pass".
A float field still takes an integer (``350`` for 350.0).
"""

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True, strict=True, allow_inf_nan=False
    )
