"""The azml Azure platform-rules policy pack, as the Pulumi CLI runs it:

    pulumi preview --policy-pack policies --policy-pack policies/platform

This file only builds the pack: serve_pack() (the SDK's PolicyPack() served
by the packs' shared-decoding servicer, azml_policies/pack_server.py) starts the analyzer's gRPC
server and blocks, so nothing may import this module. The CLI puts only this
directory on sys.path; the rules (``azml_platform``) and the property readers
they share with the checklist pack (``azml_policies``) live one level up, in
``policies/``.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import EnforcementLevel  # noqa: E402

from azml_platform import ALL_POLICIES, PACK_NAME  # noqa: E402
from azml_policies.pack_server import serve_pack  # noqa: E402

serve_pack(name=PACK_NAME, enforcement_level=EnforcementLevel.MANDATORY, policies=ALL_POLICIES)
