"""The local stack: every service, and optionally the real engines, as local processes.

`python -m storytelling.stack.local up` starts them in dependency order, waits until each is healthy,
prints the endpoints, then supervises them (`supervisor.py`): a service or engine that crashes is started
again on the same ports, with backoff, and a crash loop stops the stack with the reason. The status of
every process is kept in a status file that `storytelling stack status` shows. On Ctrl-C or SIGTERM it
stops everything in reverse order. Every child runs in its own process group and is told by the kernel
to stop if this launcher dies, so nothing is left behind.

Two profiles:
- embedded (default): the story service runs SmolLM2-135M in-process, the render service paints the
  offline storyboard sketch (no image weights ship in any package), the evaluation service runs what needs
  no VLM. Works on a laptop with no network.
- engines (`--engines`): also starts vLLM (CPU build) serving SmolLM2-135M for the story and evaluation
  services, and Triton serving the tiny random diffusers pipeline for the render service: the production
  topology, with plumbing-only image weights.

Plaintext on loopback by default. `--tls-cert/--tls-key/--tls-ca` serve every service over TLS,
`--tokens-file` makes every service check bearer tokens (the orchestrator sends `--service-token-file`'s
token to the others), and `--tls-client-cert/--tls-client-key` add mutual TLS between the orchestrator
and the stage services.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from storytelling.api.stackstatus import ChildStatus, StackStatus, default_status_path, write_status
from storytelling.api.vocabulary import DEFAULT_PORTS
from storytelling.api.credentials import channel_credentials
from storytelling.runtime.process import ServiceProcess, free_port, lost_port_race, start_service_process
from storytelling.stack.supervisor import DEFAULT_POLICY, Child, RestartPolicy, Supervisor


@dataclass(frozen=True)
class StackSecurity:
    """TLS and tokens for every service. One certificate (for localhost and 127.0.0.1) serves them all;
    `ca_file` signed it, and the client certificate, if there is one."""

    cert_file: Path
    key_file: Path
    ca_file: Path
    tokens_file: Path | None = None  # the token file every service checks
    service_token_file: Path | None = None  # the token the orchestrator sends to the stage services
    client_cert_file: Path | None = None  # the orchestrator's certificate, for mutual TLS
    client_key_file: Path | None = None

    def service_args(self, name: str) -> list[str]:
        args = ["--tls-cert-file", str(self.cert_file), "--tls-key-file", str(self.key_file)]
        if self.tokens_file is not None:
            args += ["--auth-tokens-file", str(self.tokens_file)]
        if name == "orchestrator":
            args += ["--downstream-tls-ca-file", str(self.ca_file)]
            if self.service_token_file is not None:
                args += ["--downstream-token-file", str(self.service_token_file)]
            if self.client_cert_file is not None:
                args += ["--downstream-tls-cert-file", str(self.client_cert_file)]
                args += ["--downstream-tls-key-file", str(self.client_key_file)]
        elif self.client_cert_file is not None:
            args += ["--tls-client-ca-file", str(self.ca_file)]
        return args

    def credentials(self, name: str) -> grpc.ChannelCredentials:
        """How the launcher reaches a service for its health checks."""
        if name != "orchestrator" and self.client_cert_file is not None:
            return channel_credentials(self.ca_file, self.client_cert_file, self.client_key_file)
        return channel_credentials(self.ca_file)


@dataclass(frozen=True)
class StackOptions:
    data_dir: Path = Path("runs")
    engines: bool = False
    prometheus: bool = False
    ephemeral_ports: bool = False
    log_dir: Path | None = None
    ready_timeout_s: float = 600.0
    security: StackSecurity | None = None


@dataclass
class Engines:
    """Engine processes and what the services need to reach them."""

    stoppers: list = field(default_factory=list)
    # The engine processes, for the supervisor: each restarts on its own ports.
    children: list[Child] = field(default_factory=list)
    story_args: list[str] = field(default_factory=list)
    evaluation_args: list[str] = field(default_factory=list)
    render_args: list[str] = field(default_factory=list)
    endpoints: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, str] = field(default_factory=dict)


class LocalStack:
    def __init__(self, options: StackOptions) -> None:
        self.options = options
        self.log_dir = options.log_dir or options.data_dir / "logs"
        self.services: dict[str, ServiceProcess] = {}
        self.engines = Engines()
        self.prometheus = None
        self._args: dict[str, list[str]] = {}

    def _ports(self, name: str) -> tuple[int, int]:
        if self.options.ephemeral_ports:
            return free_port(), free_port()
        return DEFAULT_PORTS[name].grpc, DEFAULT_PORTS[name].metrics

    def _start(self, name: str, args: list[str]) -> ServiceProcess:
        self._args[name] = args
        proc = self.services[name] = self._spawn(name, *self._ports(name))
        return proc

    def restart(self, name: str) -> None:
        """Starts service `name` again on its ports, after it exited; returns once it is SERVING."""
        old = self.services[name]
        old.stop()  # reaps it, and anything it left in its process group
        proc = self.services[name] = self._spawn(name, old.port, old.metrics_port)
        proc.wait_serving(self.options.ready_timeout_s)

    def _spawn(self, name: str, port: int, metrics_port: int) -> ServiceProcess:
        security = self.options.security
        return start_service_process(
            f"storytelling.{name}",
            args=[*self._args[name], *(security.service_args(name) if security else [])],
            port=port,
            metrics_port=metrics_port,
            log_path=self.log_dir / f"{name}.log",
            log_format="json",
            credentials=security.credentials(name) if security else None,
        )

    def supervise(
        self,
        policy: RestartPolicy = DEFAULT_POLICY,
        on_change: Callable[[list[ChildStatus]], None] = lambda statuses: None,
    ) -> Supervisor:
        """A supervisor of every service and engine this stack started."""
        services = [
            Child(
                name,
                process=lambda name=name: self.services[name].process,
                restart=lambda name=name: self.restart(name),
                address=self.services[name].address,
            )
            for name in self.services
        ]
        return Supervisor([*self.engines.children, *services], policy, on_change=on_change)

    def _wait(self, name: str, args: list[str]) -> None:
        """Waits for SERVING; on ephemeral ports, starts again if another process took a port first."""
        for attempt in range(3):
            try:
                self.services[name].wait_serving(self.options.ready_timeout_s)
                return
            except RuntimeError:
                proc = self.services.pop(name)
                proc.stop()
                if attempt == 2 or not (self.options.ephemeral_ports and lost_port_race(proc)):
                    raise
                self._start(name, args)

    def up(self) -> dict[str, str]:
        """Starts engines, then story, render and evaluation together, then the orchestrator."""
        try:
            if self.options.engines:
                self.engines = start_engines(self.log_dir)
            backends = {
                "story": self.engines.story_args,
                "render": self.engines.render_args,
                "evaluation": self.engines.evaluation_args,
            }
            for name, args in backends.items():
                self._start(name, args)
            for name, args in backends.items():
                self._wait(name, args)
            orchestrator = [
                "--data-dir",
                str(self.options.data_dir),
                "--story-address",
                self.services["story"].address,
                "--render-address",
                self.services["render"].address,
                "--evaluation-address",
                self.services["evaluation"].address,
            ]
            self._start("orchestrator", orchestrator)
            self._wait("orchestrator", orchestrator)
            if self.options.prometheus:
                from storytelling.stack import prometheus

                targets = {n: f"127.0.0.1:{p.metrics_port}" for n, p in self.services.items()}
                self.prometheus = prometheus.start({**targets, **self.engines.metrics}, interval_s=5)
        except BaseException:
            self.down()
            raise
        return self.endpoints()

    def endpoints(self) -> dict[str, str]:
        found = {name: proc.address for name, proc in self.services.items()}
        found.update({f"{name} metrics": proc.metrics_url for name, proc in self.services.items()})
        found.update(self.engines.endpoints)
        if self.prometheus is not None:
            found["prometheus"] = self.prometheus.url
        return found

    def down(self) -> None:
        """Stops in reverse order of start: orchestrator first, engines last."""
        if self.prometheus is not None:
            self.prometheus.stop()
            self.prometheus = None
        for name in reversed(list(self.services)):
            self.services.pop(name).stop()
        for stop in reversed(self.engines.stoppers):
            with contextlib.suppress(Exception):
                stop()
        self.engines.stoppers.clear()

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()


def start_engines(log_dir: Path) -> Engines:
    """Starts vLLM with SmolLM2-135M and Triton with the tiny random painter (plumbing only)."""
    from storytelling.llm.smollm2 import materialize
    from storytelling.render.tiny import ensure_tiny_pipeline
    from storytelling.stack import triton, vllm

    engines = Engines()
    log_dir.mkdir(parents=True, exist_ok=True)
    try:
        llm_path = materialize()
        llm = [vllm.start_vllm(llm_path, "smollm2-135m", log_path=log_dir / "vllm.log")]
        port = llm[0].port

        def restart_llm() -> None:
            llm[0].stop()
            llm[0] = vllm.start_vllm(llm_path, "smollm2-135m", log_path=log_dir / "vllm.log", port=port)

        engines.stoppers.append(lambda: llm[0].stop())
        engines.children.append(Child("vllm", lambda: llm[0].process, restart_llm, llm[0].base_url))
        spec = json.dumps({"vllm": {"kind": "openai", "base_url": llm[0].base_url, "model": "smollm2-135m"}})
        engines.story_args = ["--engines", spec, "--default-engine", "vllm"]
        engines.evaluation_args = ["--extractors", spec, "--default-extractor", "vllm"]
        engines.endpoints["vllm"] = llm[0].base_url
        engines.metrics["vllm"] = f"127.0.0.1:{port}"

        workdir = Path(tempfile.mkdtemp(prefix="triton-", dir=log_dir))
        models = ["painter", "painter_stream"]
        parameters = {m: {"model": str(ensure_tiny_pipeline())} for m in models}
        repository = triton.prepare_repository(workdir / "model_repository", parameters, models=models)
        painter = [triton.start(repository, models, workdir)]
        server = painter[0]

        def restart_triton() -> None:
            painter[0].stop()
            painter[0] = triton.start(
                repository,
                models,
                workdir,
                http_port=server.http_port,
                grpc_port=server.grpc_port,
                metrics_port=server.metrics_port,
            )

        engines.stoppers.append(lambda: painter[0].stop())
        engines.children.append(Child("triton", lambda: painter[0].process, restart_triton, server.grpc_url))
        engines.render_args = ["--triton-url", server.grpc_url, "--default-painter", "triton"]
        engines.endpoints["triton"] = server.grpc_url
        engines.metrics["triton"] = server.metrics_url.removeprefix("http://").removesuffix("/metrics")
    except BaseException:
        for stop in reversed(engines.stoppers):
            with contextlib.suppress(Exception):
                stop()
        raise
    return engines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m storytelling.stack.local",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", required=True)
    up = actions.add_parser("up", help="start the stack in the foreground; Ctrl-C or SIGTERM stops it")
    up.add_argument("--data-dir", type=Path, default=StackOptions.data_dir, help="jobs, artifacts and logs")
    up.add_argument(
        "--engines", action="store_true", help="also run vLLM and Triton (the production topology)"
    )
    up.add_argument("--prometheus", action="store_true", help="also run Prometheus scraping every process")
    up.add_argument("--ephemeral-ports", action="store_true", help="free ports instead of the defaults")
    up.add_argument(
        "--status-file",
        type=Path,
        default=default_status_path(),
        help="where the status of every process is kept, for `storytelling stack status`",
    )
    up.add_argument(
        "--max-restarts",
        type=int,
        default=RestartPolicy.max_restarts,
        help="restarts of one process within 10 minutes after which the stack stops (a crash loop)",
    )
    secure = up.add_argument_group("TLS and tokens (default: plaintext on loopback, no tokens)")
    secure.add_argument(
        "--tls-cert", type=Path, help="certificate every service serves (localhost, 127.0.0.1)"
    )
    secure.add_argument("--tls-key", type=Path, help="its private key")
    secure.add_argument("--tls-ca", type=Path, help="the CA that signed it (and --tls-client-cert)")
    secure.add_argument("--tokens-file", type=Path, help="token file every service checks")
    secure.add_argument("--service-token-file", type=Path, help="token the orchestrator sends to the others")
    secure.add_argument("--tls-client-cert", type=Path, help="orchestrator's certificate: mutual TLS")
    secure.add_argument("--tls-client-key", type=Path, help="its private key")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    security = None
    if args.tls_cert or args.tls_key or args.tls_ca:
        if not (args.tls_cert and args.tls_key and args.tls_ca):
            parser.error("--tls-cert, --tls-key and --tls-ca go together")
        security = StackSecurity(
            args.tls_cert,
            args.tls_key,
            args.tls_ca,
            args.tokens_file,
            args.service_token_file,
            args.tls_client_cert,
            args.tls_client_key,
        )
    elif args.tokens_file or args.tls_client_cert:
        parser.error("--tokens-file and --tls-client-cert need TLS (--tls-cert, --tls-key, --tls-ca)")

    stop = threading.Event()

    def on_signal(*_: object) -> None:
        if not running.is_set():
            raise KeyboardInterrupt  # still starting: unwind `up`, which stops what it started
        stop.set()

    running = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    options = StackOptions(
        args.data_dir, args.engines, args.prometheus, args.ephemeral_ports, security=security
    )
    status = StatusFile(args.status_file)
    status.update("starting")
    reason = ""
    try:
        with LocalStack(options) as stack:
            endpoints = stack.up()
            running.set()
            policy = RestartPolicy(max_restarts=args.max_restarts)
            reason = _serve_until(stop, stack, endpoints, stack.supervise(policy, status.children), status)
            status.update("stopping", reason)
    except KeyboardInterrupt:
        print("interrupted during start-up; stopped what had started", file=sys.stderr)
        status.update("stopped", "interrupted during start-up")
        return 130
    except BaseException as error:
        status.update("stopped", f"could not start: {error}")
        raise
    status.update("stopped", reason or "stopped on request")
    return 1 if reason else 0


class StatusFile:
    """The stack's status for `storytelling stack status`, rewritten on every change."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._status = StackStatus(pid=os.getpid(), state="starting")

    def update(self, state: str, reason: str = "") -> None:
        self._status.state, self._status.reason = state, reason
        self._write()

    def children(self, children: list[ChildStatus]) -> None:
        self._status.children = children
        self._write()

    def _write(self) -> None:
        self._status.updated_at = time.time()
        with contextlib.suppress(OSError):  # a status file that cannot be written must not stop the stack
            write_status(self._path, self._status)


def _serve_until(
    stop: threading.Event,
    stack: LocalStack,
    endpoints: dict[str, str],
    supervisor: Supervisor,
    status: StatusFile,
) -> str:
    """Supervises until Ctrl-C or SIGTERM (returns "") or a crash loop (returns why)."""
    width = max(map(len, endpoints))
    print("StorytellingPainter local stack is up:", flush=True)
    for name, url in endpoints.items():
        print(f"  {name:<{width}}  {url}", flush=True)
    print(f"  {'logs':<{width}}  {stack.log_dir}", flush=True)
    print("Crashed processes are restarted; `storytelling stack status` shows them. Ctrl-C stops everything.")
    status.children(supervisor.statuses())
    status.update("running")
    try:
        reason = supervisor.run(stop)
    finally:
        supervisor.close()
    if reason is not None:
        print(f"stopping: {reason}; logs in {stack.log_dir}", file=sys.stderr, flush=True)
        return reason
    print("stopping...", file=sys.stderr, flush=True)
    return ""


if __name__ == "__main__":
    raise SystemExit(main())
