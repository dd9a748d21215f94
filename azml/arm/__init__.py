"""ARM export of the offline plan and the checkov bridge.

checkov cannot read Pulumi programs (checkov issue #7601), but it reads ARM
deployment templates. :mod:`azml.arm.export` turns a :class:`~azml.plan.model.Plan`
into one, :mod:`azml.arm.checkov` runs checkov (installed apart, in
``.venv-checkov``) over it and applies the curated skips of
:mod:`azml.arm.skips`, and :mod:`azml.arm.bridge` ties the two together for
``azml plan`` and ``azml checkov``.
"""
