"""`storytelling cluster status`: readiness of a Helm release, its endpoints and recent failures."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from typing import TextIO

from storytelling.cluster.status import ReleaseStatus, format_duration


def add_parser(commands: argparse._SubParsersAction) -> None:
    cluster = commands.add_parser("cluster", help="inspect a StorytellingPainter release on Kubernetes")
    actions = cluster.add_subparsers(dest="action", required=True, metavar="{status}")
    status = actions.add_parser(
        "status",
        help="readiness of the release: components, engines still loading, endpoints, recent failures",
    )
    status.add_argument(
        "-n", "--namespace", default=os.environ.get("STORYTELLING_NAMESPACE", "default"),
        help="namespace of the release (env STORYTELLING_NAMESPACE, default: default)",
    )  # fmt: skip
    status.add_argument(
        "--release", default=os.environ.get("STORYTELLING_RELEASE", "storytelling"),
        help="Helm release name (env STORYTELLING_RELEASE, default: storytelling)",
    )  # fmt: skip
    status.add_argument("--context", default=None, help="kubeconfig context (default: the current one)")
    status.add_argument(
        "--kubeconfig", default=None, help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)"
    )
    status.add_argument("--failures", type=int, default=10, help="recent failures to show (default 10)")
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    status.set_defaults(func=status_command)


def status_command(args: argparse.Namespace) -> int:
    """Exit status 0 when every component is ready, 1 otherwise (scripts can wait on it)."""
    from storytelling.cluster.fetch import api_client, read_release
    from storytelling.cluster.status import release_status

    api = api_client(args.context, args.kubeconfig)
    objects = read_release(api, args.namespace, args.release)
    status = release_status(
        args.release, args.namespace, objects, datetime.now(UTC), max_failures=args.failures
    )
    if args.json:
        json.dump(status.as_dict(), sys.stdout, indent=2)
        print()
    else:
        show(status, sys.stdout)
    return 0 if status.ready else 1


def show(status: ReleaseStatus, out: TextIO) -> None:
    ready = sum(c.state == "ready" for c in status.components)
    profile = f", profile {status.profile}" if status.profile else ""
    print(f"release {status.release} in {status.namespace}{profile}: "
          f"{ready} of {len(status.components)} components ready", file=out)  # fmt: skip
    if status.api:
        print(f"API: {status.api}", file=out)
    if status.grafana_url:
        print(f"Grafana: {status.grafana_url}", file=out)
    for note in status.notes:
        print(f"note: {note}", file=out)
    if status.loading:
        names = ", ".join(c.name for c in status.loading)
        print(f"engines still loading their models: {names}", file=out)
    _table(out, "COMPONENTS", ["component", "kind", "ready", "state", "detail"],
           [[c.name, c.kind, f"{c.ready}/{c.desired}", c.state, c.detail] for c in status.components])  # fmt: skip
    _table(out, "PODS", ["pod", "component", "ready", "restarts", "node", "doing"],
           [[p.name, p.component, "yes" if p.ready else "no", str(p.restarts), p.node or "-",
             p.activity + (f" ({format_duration(p.since_s)})" if p.since_s is not None else "")]
            for p in status.pods])  # fmt: skip
    _table(out, "ENDPOINTS", ["service", "ports", "ready endpoints", "not ready"],
           [[e.service + (" (headless)" if e.headless else ""), ", ".join(e.ports), ", ".join(e.ready) or "none",
             str(e.not_ready)] for e in status.endpoints])  # fmt: skip
    if status.failures:
        _table(out, "RECENT FAILURES", ["age", "object", "reason", "count", "message"],
               [[format_duration(f.age_s), f.object, f.reason, str(f.count), f.message] for f in status.failures])  # fmt: skip
    else:
        print("\nno recent failures", file=out)


def _table(out: TextIO, title: str, header: list[str], rows: list[list[str]]) -> None:
    print(f"\n{title}", file=out)
    if not rows:
        print("  (none)", file=out)
        return
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header) - 1)]
    for row in [[h.upper() for h in header], *rows]:
        cells = [str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  " + "  ".join([*cells, str(row[-1])]).rstrip(), file=out)
