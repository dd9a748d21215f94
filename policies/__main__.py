"""The azml security checklist policy pack, as the Pulumi CLI runs it:

    pulumi preview --policy-pack policies --policy-pack-config policies/config.<stack>.json

This file only builds the pack: serve_pack() (the SDK's PolicyPack() served
by the packs' shared-decoding servicer, azml_policies/pack_server.py) starts the analyzer's gRPC
server and blocks, so nothing may import this module. The policies live in
the sibling package azml_policies (the CLI runs this directory with its
path on sys.path).
"""

from pulumi_policy import EnforcementLevel

from azml_policies import ALL_POLICIES, PACK_NAME
from azml_policies.pack_server import serve_pack

serve_pack(name=PACK_NAME, enforcement_level=EnforcementLevel.MANDATORY, policies=ALL_POLICIES)
