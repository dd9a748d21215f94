"""``azml release``: the release controller's commands (the group in
:mod:`azml.cli.release.app`, each command family in its own module)."""
