"""``python -m azml.cli``: the ``azml`` command."""

from .root import main

main()
