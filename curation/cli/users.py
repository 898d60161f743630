"""users add|list|setup-token: accounts for the studio's embedded login."""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from curation.cli.common import open_store, print_table
from curation.config import Settings
from curation.store.users import MIN_PASSWORD_CHARS, ROLES
from curation.studio_auth import issue_setup_token


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("users", help="manage studio accounts")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser(
        "add", help=f"create an account (password of {MIN_PASSWORD_CHARS}+ characters from $CURATION_PASSWORD or a prompt)"
    )
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, default="annotator")
    add.set_defaults(run=run_add)
    listing = actions.add_parser("list", help="the accounts and their roles")
    listing.set_defaults(run=run_list)
    token = actions.add_parser(
        "setup-token",
        help="while the studio has no account: print a one-time token that creates the first lead in the sidebar",
    )
    token.set_defaults(run=run_setup_token)


def run_add(args: argparse.Namespace, settings: Settings) -> int:
    password = os.environ.get("CURATION_PASSWORD") or getpass.getpass(f"password for {args.name}: ")
    try:
        account = open_store(settings).users.create(args.name, password, args.role)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"created {account.role} '{account.name}'")
    return 0


def run_list(args: argparse.Namespace, settings: Settings) -> int:
    print_table([(a.name, a.role) for a in open_store(settings).users.all()], ["name", "role"])
    return 0


def run_setup_token(args: argparse.Namespace, settings: Settings) -> int:
    token = issue_setup_token(open_store(settings))
    if token is None:
        print("the studio has accounts already; a lead creates new ones (sidebar, or `users add`)")
    else:
        print(f"No account yet. To create the first lead, open the studio and enter this one-time token in the "
              f"sidebar: {token}\n(or run `python -m curation users add NAME --role lead`)")
    return 0
