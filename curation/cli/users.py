"""users add|list: accounts for the studio's embedded login."""

from __future__ import annotations

import argparse
import getpass
import os

from curation.cli.common import open_store, print_table
from curation.config import Settings
from curation.store.users import ROLES


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("users", help="manage studio accounts")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="create an account (password from $CURATION_PASSWORD or a prompt)")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, default="annotator")
    add.set_defaults(run=run_add)
    listing = actions.add_parser("list", help="the accounts and their roles")
    listing.set_defaults(run=run_list)


def run_add(args: argparse.Namespace, settings: Settings) -> int:
    password = os.environ.get("CURATION_PASSWORD") or getpass.getpass(f"password for {args.name}: ")
    account = open_store(settings).users.create(args.name, password, args.role)
    print(f"created {account.role} '{account.name}'")
    return 0


def run_list(args: argparse.Namespace, settings: Settings) -> int:
    print_table([(a.name, a.role) for a in open_store(settings).users.all()], ["name", "role"])
    return 0
