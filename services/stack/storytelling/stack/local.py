"""The local stack: every service, and the engines of a model profile, as local processes.

`python -m storytelling.stack.local up --profile NAME` loads the profile (deploy/profiles/NAME.yaml),
checks its GPU memory plan against this machine, fetches its models (hub ids download on first use,
builtins are built, local paths are checked), starts its engines side by side (vLLM servers, a Triton
painter), then the story, render and evaluation services together, then the orchestrator, and prints
the endpoints. It then supervises them (`supervisor.py`): a service or engine that crashes is started
again on the same ports, with backoff, and a crash loop stops the stack with the reason. The status of
every process is kept in a status file that `storytelling stack status` shows. On Ctrl-C or SIGTERM it
stops everything in reverse order. Every child runs in its own process group and is told by the kernel
to stop if this launcher dies, so nothing is left behind.

`fetch --profile NAME` only fetches the models (for a machine that will run offline later), and
`plan --profile NAME` only validates the profile and prints its memory plan. A profile or model that
cannot be used stops the launcher before anything starts, with one line saying what to do.

Plaintext on loopback by default. `--tls-cert/--tls-key/--tls-ca` serve every service over TLS,
`--tokens-file` makes every service check bearer tokens (the orchestrator sends `--service-token-file`'s
token to the others), and `--tls-client-cert/--tls-client-key` add mutual TLS between the orchestrator
and the stage services.
"""

from __future__ import annotations

import argparse
import contextlib
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
from storytelling.api.credentials import channel_credentials
from storytelling.api.stackstatus import ChildStatus, StackStatus, default_status_path, write_status
from storytelling.api.vocabulary import DEFAULT_PORTS
from storytelling.runtime.process import ServiceProcess, free_ports, lost_port_race, start_service_process
from storytelling.stack.models import ModelError, ResolvedModel, check_gpu, detect_gpus, resolve_profile
from storytelling.stack.profiles import DEFAULT_PROFILE, Profile, ProfileError, load_profile, profile_names
from storytelling.stack.supervisor import DEFAULT_POLICY, Child, RestartPolicy, Supervisor
from storytelling.stack.wiring import (
    EnginePlan,
    ServiceConfig,
    check_environment,
    plan_engines,
    service_configs,
)

PAINTER_MODELS = ["painter", "painter_stream"]


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
    profile: str = DEFAULT_PROFILE  # a name in deploy/profiles or a path to a profile file
    prometheus: bool = False
    ephemeral_ports: bool = False
    log_dir: Path | None = None
    ready_timeout_s: float = 600.0
    security: StackSecurity | None = None


@dataclass
class Engines:
    """Engine processes of a profile and what the services need to reach them."""

    stoppers: list[Callable[[], None]] = field(default_factory=list)
    # The engine processes, for the supervisor: each restarts on its own ports.
    children: list[Child] = field(default_factory=list)
    vllm_urls: dict[str, str] = field(default_factory=dict)  # role owning the server -> …/v1
    triton_url: str = ""
    endpoints: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, str] = field(default_factory=dict)

    def stop(self) -> None:
        for stop in reversed(self.stoppers):
            with contextlib.suppress(Exception):
                stop()
        self.stoppers.clear()


def prepare(profile_name: str) -> tuple[Profile, dict[str, ResolvedModel], EnginePlan]:
    """Loads the profile, checks the GPU against its plan and fetches its models: everything that can fail
    before a process starts. Raises ProfileError or ModelError with one line saying what to do."""
    profile = load_profile(profile_name)
    check_environment(profile)
    gpu = check_gpu(profile, detect_gpus())
    models = resolve_profile(profile)
    return profile, models, plan_engines(profile, models, gpu)


class LocalStack:
    def __init__(self, options: StackOptions) -> None:
        self.options = options
        self.log_dir = options.log_dir or options.data_dir / "logs"
        self.services: dict[str, ServiceProcess] = {}
        self.engines = Engines()
        self.prometheus = None
        self.profile: Profile | None = None
        self._configs: dict[str, ServiceConfig] = {}

    def _ports(self, name: str) -> tuple[int, int]:
        if self.options.ephemeral_ports:
            grpc_port, metrics_port = free_ports(2)
            return grpc_port, metrics_port
        return DEFAULT_PORTS[name].grpc, DEFAULT_PORTS[name].metrics

    def _start(self, name: str, config: ServiceConfig) -> ServiceProcess:
        self._configs[name] = config
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
        config = self._configs[name]
        return start_service_process(
            f"storytelling.{name}",
            args=[*config.args, *(security.service_args(name) if security else [])],
            env=config.env,
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

    def _wait(self, name: str, config: ServiceConfig) -> None:
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
                self._start(name, config)

    def up(self) -> dict[str, str]:
        """Prepares the profile, starts its engines, then story, render and evaluation together, then the
        orchestrator. Raises ProfileError or ModelError before anything starts if the profile cannot run."""
        profile, models, plan = prepare(self.options.profile)
        self.profile = profile
        try:
            self.engines = start_engines(plan, self.log_dir)
        except BaseException:
            self.down()
            raise
        return self.start_services(
            service_configs(profile, models, self.engines.vllm_urls, self.engines.triton_url)
        )

    def start_services(self, configs: dict[str, ServiceConfig]) -> dict[str, str]:
        """Starts story, render and evaluation with `configs` (they reach `self.engines`), together, then the
        orchestrator; returns the endpoints. On any failure stops everything, engines included."""
        try:
            for name, config in configs.items():
                self._start(name, config)
            for name, config in configs.items():
                self._wait(name, config)
            orchestrator = ServiceConfig(
                [
                    "--data-dir",
                    str(self.options.data_dir),
                    "--story-address",
                    self.services["story"].address,
                    "--render-address",
                    self.services["render"].address,
                    "--evaluation-address",
                    self.services["evaluation"].address,
                ]  # fmt: skip
            )
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
        self.engines.stop()

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()


def start_engines(plan: EnginePlan, log_dir: Path) -> Engines:
    """Launches every engine of the plan at once (vLLM servers load slowly), then waits for each; on any
    failure, or Ctrl-C, stops all of them. Each engine is a supervised child that restarts on its ports."""
    from storytelling.stack import triton, vllm

    engines = Engines()
    log_dir.mkdir(parents=True, exist_ok=True)
    waits: list[Callable[[], None]] = []
    try:
        for launch in plan.vllm:
            log_path = log_dir / f"vllm-{launch.role}.log"
            llm = [
                vllm.start_vllm(
                    launch.path, launch.served_name, log_path=log_path, wait=False, **launch.options
                )
            ]  # type: ignore[arg-type]
            port = llm[0].port

            def restart_llm(llm=llm, launch=launch, log_path=log_path, port=port) -> None:
                llm[0].stop()
                llm[0] = vllm.start_vllm(
                    launch.path, launch.served_name, log_path=log_path, port=port, **launch.options
                )  # type: ignore[arg-type]

            engines.stoppers.append(lambda llm=llm: llm[0].stop())
            engines.children.append(
                Child(f"vllm-{launch.role}", lambda llm=llm: llm[0].process, restart_llm, llm[0].base_url)
            )
            timeout = float(launch.options["startup_timeout"])  # type: ignore[arg-type]
            waits.append(lambda server=llm[0], timeout=timeout: server.wait_ready(timeout))
            engines.vllm_urls[launch.role] = llm[0].base_url
            engines.endpoints[f"vllm ({launch.role}: {launch.served_name})"] = llm[0].base_url
            engines.metrics[f"vllm-{launch.role}"] = f"127.0.0.1:{port}"
        if plan.triton is not None:
            workdir = Path(tempfile.mkdtemp(prefix="triton-", dir=log_dir))
            parameters = dict.fromkeys(PAINTER_MODELS, plan.triton)
            repository = triton.prepare_repository(
                workdir / "model_repository", parameters, models=PAINTER_MODELS
            )
            painter = [triton.start(repository, PAINTER_MODELS, workdir, wait=False)]
            server = painter[0]

            def restart_triton() -> None:
                painter[0].stop()
                painter[0] = triton.start(
                    repository,
                    PAINTER_MODELS,
                    workdir,
                    http_port=server.http_port,
                    grpc_port=server.grpc_port,
                    metrics_port=server.metrics_port,
                    ready_timeout=600.0,
                )

            engines.stoppers.append(lambda: painter[0].stop())
            engines.children.append(
                Child("triton", lambda: painter[0].process, restart_triton, server.grpc_url)
            )
            waits.append(lambda: server.wait_ready(600.0))
            engines.triton_url = server.grpc_url
            engines.endpoints["triton"] = server.grpc_url
            engines.metrics["triton"] = server.metrics_url.removeprefix("http://").removesuffix("/metrics")
        for wait in waits:
            wait()
    except BaseException:
        engines.stop()
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
    fetch = actions.add_parser("fetch", help="download or build every model of a profile, then exit")
    plan = actions.add_parser("plan", help="validate a profile and print its memory plan, then exit")
    for action in (up, fetch, plan):
        action.add_argument(
            "--profile",
            default=DEFAULT_PROFILE,
            help=f"profile name ({', '.join(profile_names())}) or path to a profile file",
        )
    up.add_argument("--data-dir", type=Path, default=StackOptions.data_dir, help="jobs, artifacts and logs")
    up.add_argument(
        "--engines", action="store_true", help="shorthand for --profile cpu-engines (vLLM and Triton on CPU)"
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
    try:
        if args.action == "plan":
            print(describe_plan(load_profile(args.profile)))
            return 0
        if args.action == "fetch":
            profile, models, _ = prepare(args.profile)
            for role, model in models.items():
                print(f"{role:<12} {model.source} -> {model.path} ({model.weights_gib:.2f} GiB)")
            return 0
        profile_name = "cpu-engines" if args.engines else args.profile
        options = StackOptions(
            args.data_dir,
            profile_name,
            args.prometheus,
            args.ephemeral_ports,
            security=_security(parser, args),
        )
        return _run(options, args.status_file, RestartPolicy(max_restarts=args.max_restarts))
    except (ProfileError, ModelError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _security(parser: argparse.ArgumentParser, args: argparse.Namespace) -> StackSecurity | None:
    if args.tls_cert or args.tls_key or args.tls_ca:
        if not (args.tls_cert and args.tls_key and args.tls_ca):
            parser.error("--tls-cert, --tls-key and --tls-ca go together")
        return StackSecurity(
            args.tls_cert,
            args.tls_key,
            args.tls_ca,
            args.tokens_file,
            args.service_token_file,
            args.tls_client_cert,
            args.tls_client_key,
        )
    if args.tokens_file or args.tls_client_cert:
        parser.error("--tokens-file and --tls-client-cert need TLS (--tls-cert, --tls-key, --tls-ca)")
    return None


def describe_plan(profile: Profile) -> str:
    lines = [f"profile {profile.name} ({profile.device}): {profile.description}"]
    for role in ("storyteller", "extractor", "judge"):
        found = profile.engine_of(role)
        if found is None:
            lines.append(f"  {role:<12} none (its evaluators report not run)")
        elif found[0] != role:
            lines.append(f"  {role:<12} uses the {found[0]}'s engine")
        else:
            model = found[1]
            lines.append(f"  {role:<12} {model.engine}: {model.model or model.endpoint}")
    painter = profile.painter
    lines.append(f"  {'painter':<12} {painter.engine}: {painter.model or painter.endpoint or 'storyboard'}")
    if profile.gpu is not None:
        shares = profile.gpu_shares()
        used = sum(shares.values()) + profile.gpu.reserve_gib
        parts = ", ".join(f"{role} {share:g}" for role, share in shares.items())
        lines.append(
            f"  GPU plan: {parts}, reserve {profile.gpu.reserve_gib:g} = {used:g} of "
            f"{profile.gpu.memory_gib:g} GiB"
        )
    return "\n".join(lines)


def _run(options: StackOptions, status_path: Path, policy: RestartPolicy) -> int:
    stop = threading.Event()
    running = threading.Event()

    def on_signal(*_: object) -> None:
        if not running.is_set():
            raise KeyboardInterrupt  # still starting: unwind `up`, which stops what it started
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    status = StatusFile(status_path)
    status.update("starting")
    reason = ""
    try:
        with LocalStack(options) as stack:
            endpoints = stack.up()
            running.set()
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
    profile = stack.profile.name if stack.profile else stack.options.profile
    print(f"StorytellingPainter local stack is up (profile {profile}):", flush=True)
    for name, url in endpoints.items():
        print(f"  {name:<{width}}  {url}", flush=True)
    print(f"  {'logs':<{width}}  {stack.log_dir}", flush=True)
    print(
        "Crashed processes are restarted; `storytelling stack status` shows them. Ctrl-C stops everything.",
        flush=True,
    )
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
