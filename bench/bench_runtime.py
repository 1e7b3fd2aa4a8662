"""Shared runtime cost: a trivial unary RPC through the runtime against a bare grpc.aio server, and the
cost of TLS and of token checking against the runtime in plaintext without authentication.

Every server runs the same servicer (tests/runtime/probe.py) in its own process on loopback; the bare one
lacks the runtime (handler wrapper with metrics, logging, deadlines, error mapping; health; reflection),
the secured ones add TLS (certificates made for the run), mutual TLS with an identity check, and bearer
token checking. Rounds alternate between the servers so machine noise hits all alike. Latency, CPU time
and throughput are measured on an established connection (the per-RPC cost); the handshake is measured
separately as the time to open a connection and complete a first RPC. CPU time per RPC (server process,
all threads, and this client) is the robust measure on a loaded machine: wall-clock ratios drift with
other processes, CPU time does not.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from storytelling.api.credentials import channel_credentials
from storytelling.runtime.process import ServiceProcess, free_port, start_service_process
from storytelling.v1 import story_pb2, story_pb2_grpc

REQUEST = story_pb2.ListModesRequest()
BASELINE = "runtime"  # plaintext, no authentication: what the security costs are ratios to


@dataclass(frozen=True)
class Target:
    address: str
    credentials: grpc.ChannelCredentials | None = None
    metadata: tuple[tuple[str, str], ...] = ()
    pid: int = 0  # the server process, whose CPU time is measured

    def channel(self) -> grpc.aio.Channel:
        if self.credentials is None:
            return grpc.aio.insecure_channel(self.address)
        return grpc.aio.secure_channel(self.address, self.credentials)


def cpu_seconds(pid: int) -> float:
    """CPU time the process has run, all threads, in nanosecond resolution (Linux schedstat). Unlike
    latency, it does not grow when other processes load the machine."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):  # a thread that just ended
            pass
    return total / 1e9


async def serve_bare(port: int) -> None:
    from tests.runtime.probe import ProbeServicer

    server = grpc.aio.server()
    story_pb2_grpc.add_StoryServiceServicer_to_server(ProbeServicer(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


async def latencies(target: Target, calls: int) -> tuple[list[float], float, float]:
    """Latency samples, and the server's and this client's CPU seconds over the `calls` RPCs."""
    async with target.channel() as channel:
        stub = story_pb2_grpc.StoryServiceStub(channel)
        for _ in range(200):  # warm-up: connection, handler cache, allocator
            await stub.ListModes(REQUEST, metadata=target.metadata)
        samples = []
        server_cpu, client_cpu = cpu_seconds(target.pid), time.process_time()
        for _ in range(calls):
            start = time.perf_counter()
            await stub.ListModes(REQUEST, metadata=target.metadata)
            samples.append(time.perf_counter() - start)
        return samples, cpu_seconds(target.pid) - server_cpu, time.process_time() - client_cpu


async def connections(target: Target, count: int) -> list[float]:
    """Seconds to open a connection (TCP, and TLS when secured) and complete a first RPC."""
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        async with target.channel() as channel:
            await story_pb2_grpc.StoryServiceStub(channel).ListModes(REQUEST, metadata=target.metadata)
            samples.append(time.perf_counter() - start)
    return samples


async def throughput(target: Target, callers: int, seconds: float) -> float:
    async with target.channel() as channel:
        stub = story_pb2_grpc.StoryServiceStub(channel)
        await stub.ListModes(REQUEST, metadata=target.metadata)
        done = 0
        stop_at = time.perf_counter() + seconds

        async def caller() -> None:
            nonlocal done
            while time.perf_counter() < stop_at:
                await stub.ListModes(REQUEST, metadata=target.metadata)
                done += 1

        start = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(callers)))
        return done / (time.perf_counter() - start)


async def wrapper_cost_us(token_file: Path, token: str, calls: int = 100_000) -> tuple[float, float, float]:
    """In-process cost of one call, without a network: bare servicer, through the runtime's handler
    wrapper, and through the wrapper checking a bearer token."""
    from prometheus_client import CollectorRegistry
    from storytelling.runtime.auth import Authenticator, TokenStore
    from storytelling.runtime.guard import Guard
    from storytelling.runtime.handlers import HandlerWrapper
    from storytelling.runtime.metrics import RpcMetrics

    metadata = (("user-agent", "grpc-python"), ("authorization", f"Bearer {token}"))

    class Context:  # the calls the wrapper makes on a servicer context
        def time_remaining(self) -> None:
            return None

        def code(self) -> None:
            return None

        def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
            return metadata

    async def servicer(request, context):
        return request

    handler = grpc.unary_unary_rpc_method_handler(servicer)
    method = "/storytelling.v1.StoryService/ListModes"
    wrapped = HandlerWrapper(RpcMetrics(CollectorRegistry())).wrap(method, handler).unary_unary
    guard = Guard(Authenticator(TokenStore(token_file)), None)
    checked = HandlerWrapper(RpcMetrics(CollectorRegistry()), guard).wrap(method, handler).unary_unary
    context = Context()
    timings: dict[object, list[float]] = {servicer: [], wrapped: [], checked: []}
    for _ in range(2):
        for fn in timings:
            start = time.perf_counter()
            for _ in range(calls):
                await fn(REQUEST, context)
            timings[fn].append((time.perf_counter() - start) / calls * 1e6)
    return min(timings[servicer]), min(timings[wrapped]), min(timings[checked])


def secured_servers(directory: Path) -> tuple[dict[str, list[str]], dict[str, Target], Path, str]:
    """Certificates and a token made for this run; the probe flags of each secured variant."""
    from tests.security import tokens
    from tests.security.pki import Authority

    ca = Authority(directory / "ca")
    server, client = ca.issue("probe"), ca.issue("bench-client", dns=("bench-client",), ips=())
    token = tokens.make("bench", "read", "write")
    token_file = tokens.write(directory / "tokens.json", token)
    tls = ["--tls-cert-file", str(server.cert), "--tls-key-file", str(server.key)]
    auth = ["--auth-tokens-file", str(token_file)]
    mutual = ["--tls-client-ca-file", str(ca.cert), "--tls-client-identities", '["bench-client"]']
    flags = {
        "runtime+token": auth,
        "runtime+tls": tls,
        "runtime+tls+token": [*tls, *auth],
        "runtime+mtls+token": [*tls, *mutual, *auth],
    }
    trusted = channel_credentials(ca.cert)
    presenting = channel_credentials(ca.cert, client.cert, client.key)
    targets = {
        "runtime+token": Target("", None, token.metadata),
        "runtime+tls": Target("", trusted),
        "runtime+tls+token": Target("", trusted, token.metadata),
        "runtime+mtls+token": Target("", presenting, token.metadata),
    }
    return flags, targets, token_file, token.value


def wait_port(address: str) -> None:
    with grpc.insecure_channel(address) as channel:
        grpc.channel_ready_future(channel).result(timeout=30)


def ratio_line(name: str, round_p50: dict[str, list[float]], rps: dict[str, list[float]]) -> str:
    """Ratios paired by round (each round's target against the same round's baseline), then the median
    over rounds: load that drifts between rounds on a shared machine cancels out."""
    p50 = statistics.median(t / b for t, b in zip(round_p50[name], round_p50[BASELINE], strict=True))
    through = statistics.median(t / b for t, b in zip(rps[name], rps[BASELINE], strict=True))
    return (
        f"{name + '/' + BASELINE:<30} p50 latency ratio {p50:.3f} ({100 * (p50 - 1):+.1f}%), "
        f"throughput ratio {through:.3f} ({100 * (1 / through - 1):+.1f}% per RPC)"
    )


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--callers", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=50, help="new connections timed per round")
    args = parser.parse_args()
    if args.serve_bare:
        asyncio.run(serve_bare(args.serve_bare))
        return

    workdir = Path(tempfile.mkdtemp(prefix="bench-runtime-"))
    flags, secured, token_file, token = secured_servers(workdir)
    quiet = ["--log-level", "WARNING"]
    processes: dict[str, ServiceProcess] = {
        BASELINE: start_service_process("tests.runtime.probe", args=quiet)
    }
    for name, extra in flags.items():
        credentials = secured[name].credentials  # for its health checks (mutual TLS: with the client's)
        processes[name] = start_service_process(
            "tests.runtime.probe", args=[*quiet, *extra], credentials=credentials
        )
    bare_port = free_port()
    bare = subprocess.Popen([sys.executable, __file__, "--serve-bare", str(bare_port)])
    try:
        for proc in processes.values():
            proc.wait_serving(60)
        wait_port(f"127.0.0.1:{bare_port}")
        targets = {
            "bare grpc.aio": Target(f"127.0.0.1:{bare_port}", pid=bare.pid),
            BASELINE: Target(processes[BASELINE].address, pid=processes[BASELINE].process.pid),
        }
        for name, target in secured.items():
            pid = processes[name].process.pid
            targets[name] = Target(processes[name].address, target.credentials, target.metadata, pid)
        lat: dict[str, list[float]] = {name: [] for name in targets}
        round_p50: dict[str, list[float]] = {name: [] for name in targets}
        rps: dict[str, list[float]] = {name: [] for name in targets}
        connect: dict[str, list[float]] = {name: [] for name in targets}
        cpu: dict[str, list[float]] = {name: [0.0, 0.0] for name in targets}  # server, client seconds
        for _ in range(args.rounds):
            for name, target in targets.items():
                samples, server_cpu, client_cpu = asyncio.run(latencies(target, args.calls))
                cpu[name][0] += server_cpu
                cpu[name][1] += client_cpu
                lat[name] += samples
                round_p50[name].append(percentile(samples, 0.5))
                rps[name].append(asyncio.run(throughput(target, args.callers, args.seconds)))
                connect[name] += asyncio.run(connections(target, args.connections))
    finally:
        for proc in processes.values():
            proc.stop()
        bare.terminate()
        bare.wait()

    print(f"# trivial unary RPC on loopback, {args.rounds} alternating rounds, 2-core machine")
    calls = args.rounds * args.calls
    per_rpc_us = {name: (cpu[name][0] * 1e6 / calls, cpu[name][1] * 1e6 / calls) for name in targets}
    print(
        f"{'server':<20}{'p50 ms':>10}{'p99 ms':>10}{f'rps@{args.callers}':>12}{'connect+1st ms':>16}"
        f"{'server CPU us':>15}{'client CPU us':>15}"
    )
    for name in targets:
        print(
            f"{name:<20}{percentile(lat[name], 0.5) * 1e3:>10.3f}{percentile(lat[name], 0.99) * 1e3:>10.3f}"
            f"{statistics.median(rps[name]):>12.0f}{percentile(connect[name], 0.5) * 1e3:>16.2f}"
            f"{per_rpc_us[name][0]:>15.1f}{per_rpc_us[name][1]:>15.1f}"
        )
    base, ours = "bare grpc.aio", BASELINE
    p50_ratio = percentile(lat[ours], 0.5) / percentile(lat[base], 0.5)
    rps_ratio = statistics.median(rps[ours]) / statistics.median(rps[base])
    print(f"runtime/bare p50 latency ratio: {p50_ratio:.3f} (overhead {100 * (p50_ratio - 1):+.1f}%)")
    print(f"runtime/bare throughput ratio:  {rps_ratio:.3f} (overhead {100 * (1 / rps_ratio - 1):+.1f}%)")
    print(f"# security, as ratios to the {BASELINE} in plaintext without authentication (same run)")
    for name in secured:
        print(ratio_line(name, round_p50, rps))
    print("# CPU time per RPC (robust to other load on the machine), as ratios to the same baseline")
    base_server, base_total = per_rpc_us[BASELINE][0], sum(per_rpc_us[BASELINE])
    for name in secured:
        server, total = per_rpc_us[name][0], sum(per_rpc_us[name])
        print(
            f"{name + '/' + BASELINE:<30} server CPU ratio {server / base_server:.3f} "
            f"({server - base_server:+.1f} us), server+client CPU ratio {total / base_total:.3f} "
            f"({total - base_total:+.1f} us)"
        )
    bare_us, wrapped_us, checked_us = asyncio.run(wrapper_cost_us(token_file, token))
    per_rpc_us = 1e6 / statistics.median(rps[base])
    print(
        f"handler wrapper in-process: {wrapped_us - bare_us:.2f} us per RPC "
        f"= {100 * (wrapped_us - bare_us) / per_rpc_us:.1f}% of a bare RPC's {per_rpc_us:.0f} us"
    )
    print(
        f"token check in-process: {checked_us - wrapped_us:.2f} us per RPC "
        f"= {100 * (checked_us - wrapped_us) / per_rpc_us:.1f}% of a bare RPC's {per_rpc_us:.0f} us"
    )


if __name__ == "__main__":
    main()
