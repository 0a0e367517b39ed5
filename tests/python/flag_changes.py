"""Prints one JSON line each time the flagd provider (in-process resolver,
syncing from a Gatehouse daemon) reports that its flags changed: the
wall-clock time it was told (`t_ns`, Unix nanoseconds) and the canary
weight it then evaluates with. The first line is the set it started with.
No Gatehouse code. Used by `cargo bench -p gatehouse --bench flagd`.

    flag_changes.py HOST PORT ENVIRONMENT FLAG_KEY TOKEN
"""

import json
import sys
import threading
import time

import grpc
from openfeature import api
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEvent

host, port, environment, flag_key, token = sys.argv[1:6]
client = api.get_client()
lock = threading.Lock()


def report(_details):
    told = time.time_ns()
    d = client.get_object_details(flag_key, {}, EvaluationContext(targeting_key="probe"))
    weight = (d.flag_metadata or {}).get("canary_weight_percent", 0)
    with lock:
        print(json.dumps({"t_ns": told, "weight": weight}), flush=True)


api.add_handler(ProviderEvent.PROVIDER_READY, report)
api.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, report)
api.set_provider(
    FlagdProvider(
        resolver_type=ResolverType.IN_PROCESS,
        host=host,
        port=int(port),
        selector=environment,
        channel_credentials=grpc.composite_channel_credentials(
            grpc.local_channel_credentials(),
            grpc.access_token_call_credentials(token),
        ),
        deadline_ms=20_000,
    )
)
threading.Event().wait()
