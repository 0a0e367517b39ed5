"""A model-serving service that releases through Gatehouse with no Gatehouse
code: it reads its model configuration per request through OpenFeature
(flagd's in-process resolver, syncing from the daemon) and exports its
request metrics for Prometheus. The daemon judges a canary on those metrics.

    GATEHOUSE_TOKEN=... python service.py --daemon 127.0.0.1:50051 \\
        --environment production --port 8000

    GET /predict?user=ID&text=...  an answer, from the configuration the flag
                                   gives this user (sticky per user)
    GET /metrics                   http_requests_total{variant,status} and
                                   http_request_duration_seconds{variant}
    GET /healthz                   200 once the first flag set has arrived

The model call is simulated so the example runs anywhere: `predict` is where
a real service calls its model with the configuration's model, prompt
template and parameters. A configuration may carry a `simulate` object
(`error_rate`, a share of requests that fail, and `extra_latency_ms`) to try
what a regressed candidate does to a canary.
"""

import argparse
import hashlib
import json
import os
import random
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import grpc
from openfeature import api
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType
from openfeature.evaluation_context import EvaluationContext
from openfeature.provider import ProviderStatus
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

REQUESTS = Counter(
    "http_requests",
    "Requests answered, by the configuration variant that served them and HTTP status.",
    ["variant", "status"],
)
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time to answer a request, by the configuration variant that served it.",
    ["variant"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5),
)
# Every series exists from the start at 0, so a query for an arm's errors
# finds a series (0 errors) rather than nothing.
for _variant in ("active", "canary"):
    for _status in ("200", "500"):
        REQUESTS.labels(_variant, _status)
    LATENCY.labels(_variant)


class ModelError(Exception):
    pass


def predict(config, text):
    """The model call. Simulated: a few milliseconds, and whatever the
    configuration's `simulate` object asks for."""
    simulate = config.get("simulate") or {}
    time.sleep((2 + 4 * random.random() + float(simulate.get("extra_latency_ms", 0))) / 1000)
    if random.random() < float(simulate.get("error_rate", 0)):
        raise ModelError(f"{config.get('model', 'the model')} failed")
    labels = config.get("labels") or ["ok"]
    pick = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")
    return labels[pick % len(labels)]


def connect(daemon, environment, token):
    host, _, port = daemon.rpartition(":")
    credentials = None
    if token:
        # A bearer token over a plaintext loopback connection: grpcio sends
        # call credentials only on a secure channel, and local credentials
        # count as one. Over the network, use TLS credentials instead.
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
    return api.get_client()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--daemon", default="127.0.0.1:50051", help="the daemon's gRPC address")
    parser.add_argument("--environment", default="production", help="which environment's flag to sync")
    parser.add_argument("--flag-key", help="the flag's key (default: the environment's name)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--bind", default="127.0.0.1")
    args = parser.parse_args()
    flag_key = args.flag_key or args.environment
    client = connect(args.daemon, args.environment, os.environ.get("GATEHOUSE_TOKEN", ""))

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def reply(self, status, body, content_type="application/json"):
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            url = urlparse(self.path)
            if url.path == "/metrics":
                return self.reply(200, generate_latest(), CONTENT_TYPE_LATEST)
            if url.path == "/healthz":
                ready = client.get_provider_status() == ProviderStatus.READY
                return self.reply(200 if ready else 503, {"ready": ready})
            if url.path != "/predict":
                return self.reply(404, {"error": "try /predict?user=ID"})
            query = parse_qs(url.query)
            user = query.get("user", [""])[0]
            text = query.get("text", [""])[0]
            started = time.perf_counter()
            details = client.get_object_details(
                flag_key, {}, EvaluationContext(targeting_key=user)
            )
            if details.error_code:
                # No configuration to serve with: say so, count nothing.
                return self.reply(503, {"error": f"no configuration: {details.error_code}"})
            variant = details.variant or "active"
            meta = dict(details.flag_metadata or {})
            digest = meta.get("canary_digest" if variant == "canary" else "digest", "")
            body = {"user": user, "variant": variant, "digest": digest}
            try:
                body["answer"] = predict(details.value or {}, text)
                status = 200
            except ModelError as e:
                body["error"] = str(e)
                status = 500
            LATENCY.labels(variant).observe(time.perf_counter() - started)
            REQUESTS.labels(variant, str(status)).inc()
            self.reply(status, body)

        def log_message(self, *_):
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request, client_address):
            # A client that hangs up mid-request is not the service's error.
            if not isinstance(sys.exc_info()[1], ConnectionError):
                super().handle_error(request, client_address)

    server = Server((args.bind, args.port), Handler)
    print(
        json.dumps({"listening": f"http://{args.bind}:{server.server_port}", "flag": flag_key}),
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        api.shutdown()


if __name__ == "__main__":
    sys.exit(main())
