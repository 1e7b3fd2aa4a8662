"""`storytelling token create IDENTITY`: a new bearer token, and the digest entry a service's token file
holds instead of it (see docs/security.md)."""

from __future__ import annotations

import argparse
import datetime
import json
import sys

from storytelling.api.credentials import SCOPES, new_token, token_digest


def add_parser(commands: argparse._SubParsersAction) -> None:
    token = commands.add_parser("token", help="make bearer tokens for services that check them")
    actions = token.add_subparsers(dest="action", required=True, metavar="{create}")
    create = actions.add_parser(
        "create", help="print a new token and the entry to add to the services' token file"
    )
    create.add_argument("identity", help="who the token is for; jobs it creates are owned by this name")
    create.add_argument(
        "--scope",
        dest="scopes",
        action="append",
        choices=SCOPES,
        default=[],
        help="read (Get/List/Watch), write (create, cancel, run), admin (every identity's jobs); repeat",
    )
    create.add_argument("--expires-in-days", type=float, default=None, help="the token stops working after")
    create.set_defaults(func=create_command)


def create_command(args: argparse.Namespace) -> int:
    if not args.scopes:
        raise ValueError("give at least one --scope (read, write, admin)")
    token = new_token()
    entry = {"identity": args.identity, "scopes": sorted(set(args.scopes)), "sha256": token_digest(token)}
    if args.expires_in_days is not None:
        expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=args.expires_in_days)
        entry["expires_at"] = expires.replace(microsecond=0).isoformat().replace("+00:00", "Z")
    print(token)  # stdout: the token alone, for `> alice.token`
    print(
        'add this entry to the "tokens" list of the services\' token file (it holds no secret):\n'
        + json.dumps(entry),
        file=sys.stderr,
    )
    return 0
