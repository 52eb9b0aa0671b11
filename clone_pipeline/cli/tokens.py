"""clone-pipeline token: API tokens (create, list, revoke)."""

from __future__ import annotations

import sys

import click
from rich.table import Table

from clone_pipeline.cli.common import console, err_console, ready


@click.group()
def token() -> None:
    """API tokens: create, list, revoke. A user token reaches only that user's deployments;
    an admin token reaches all."""


@token.command(name="create")
@click.argument("external_id", required=False)
@click.option("--admin", is_flag=True, help="An admin token (every user's deployments).")
@click.option("--name", help="A label to recognise it by.")
@click.option("--expires-days", type=float, help="Expire after this many days.")
def token_create(external_id: str | None, admin: bool, name: str | None,
                 expires_days: float | None) -> None:
    """Create a token for EXTERNAL_ID (or --admin); it is printed once, keep it safe."""
    from clone_pipeline.services.tokens import create_token

    settings = ready()
    try:
        secret, info = create_token(settings, external_id, admin, name, expires_days)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    if sys.stdout.isatty():
        who = "admin" if info.admin else info.user
        err_console.print(f"token {info.prefix} for {who} (shown once):")
    click.echo(secret)


@token.command(name="list")
def token_list() -> None:
    """Every token: prefix, owner, created, expiry, revoked."""
    from clone_pipeline.services.tokens import list_tokens

    settings = ready()
    table = Table(title="API tokens (only their prefixes are kept in view)")
    for col in ("prefix", "name", "user", "admin", "created", "expires", "revoked"):
        table.add_column(col)
    for t in list_tokens(settings):
        table.add_row(t.prefix, t.name, t.user or "-", "yes" if t.admin else "",
                      f"{t.created_at:%Y-%m-%d %H:%M}",
                      f"{t.expires_at:%Y-%m-%d %H:%M}" if t.expires_at else "-",
                      f"{t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "")
    console.print(table)


@token.command(name="revoke")
@click.argument("prefix_or_id")
def token_revoke(prefix_or_id: str) -> None:
    """Revoke a token by the prefix `token list` shows (or its id); refused from the next
    request."""
    from clone_pipeline.services.tokens import revoke_token

    settings = ready()
    count = revoke_token(settings, prefix_or_id)
    if not count:
        raise click.ClickException(f"no active token {prefix_or_id!r} (see clone-pipeline "
                                   f"token list)")
    console.print(f"revoked {count} token(s)")


COMMANDS = (token,)
