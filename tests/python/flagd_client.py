"""A service's view of its configuration through OpenFeature and the flagd
provider's in-process resolver, syncing from a Gatehouse daemon: no
Gatehouse code. Prints one JSON line per request key with the variant and
configuration it resolved; then, with --until-generation-change, waits for
the next flag set and prints the keys again.

    flagd_client.py HOST PORT ENVIRONMENT FLAG_KEY KEYS [TOKEN] [--until-generation-change]
"""

import json
import sys
import time

import grpc
from openfeature import api
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType
from openfeature.evaluation_context import EvaluationContext
from openfeature.provider import ProviderStatus

args = [a for a in sys.argv[1:] if not a.startswith("--")]
host, port, environment, flag_key, keys = args[:5]
token = args[5] if len(args) > 5 else ""
credentials = None
if token:
    # A bearer token over loopback without TLS: local credentials let
    # grpcio send call credentials on a plaintext local connection.
    credentials = grpc.composite_channel_credentials(
        grpc.local_channel_credentials(),
        grpc.access_token_call_credentials(token),
    )
api.set_provider(
    FlagdProvider(
        resolver_type=ResolverType.IN_PROCESS,
        host=host,
        port=int(port),
        selector=environment,
        channel_credentials=credentials,
        deadline_ms=20_000,
    )
)
client = api.get_client()
deadline = time.monotonic() + 30
while client.get_provider_status() != ProviderStatus.READY:
    if time.monotonic() > deadline:
        print(json.dumps({"error": f"provider not ready: {client.get_provider_status()}"}))
        sys.exit(2)
    time.sleep(0.02)


def dump():
    for i in range(int(keys)):
        key = f"user-{i}"
        d = client.get_object_details(flag_key, {}, EvaluationContext(targeting_key=key))
        print(
            json.dumps(
                {
                    "key": key,
                    "variant": d.variant,
                    "value": d.value,
                    "reason": str(d.reason),
                    "error": str(d.error_code) if d.error_code else None,
                    "metadata": dict(d.flag_metadata or {}),
                }
            ),
            flush=True,
        )
    print(json.dumps({"done": True}), flush=True)


def generation():
    d = client.get_object_details(flag_key, {}, EvaluationContext(targeting_key="probe"))
    return (d.flag_metadata or {}).get("generation")


dump()
if "--until-generation-change" in sys.argv:
    seen = generation()
    deadline = time.monotonic() + 30
    while generation() == seen:
        if time.monotonic() > deadline:
            print(json.dumps({"error": "no new flag set within 30 s"}), flush=True)
            sys.exit(3)
        time.sleep(0.005)
    dump()
api.shutdown()
