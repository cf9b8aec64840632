"""`bot staff`: support console accounts (agents, marketers, admins)."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlmodel import Session

staff_app = typer.Typer(help="Support console accounts.", no_args_is_help=True)

# Printed by `make demo`; only ever created in the demo shop's database.
DEMO_STAFF = (
    ("agent@example.com", "Alex Agent", "agent", "demo-agent-pass"),
    ("admin@example.com", "Ada Admin", "admin", "demo-admin-pass"),
    ("marketer@example.com", "Mia Marketer", "marketer", "demo-marketer-pass"),
)
DEMO_CANNED = (
    ("Greeting", "Hi, I'm here to help! Give me a moment to read through your conversation."),
    (
        "Order number",
        "Could you tell me your order number (six digits, in your confirmation e-mail)?",
    ),
    ("Goodbye", "Glad I could help. Have a lovely day!"),
)


def ensure_demo_staff(session: Session) -> list[tuple[str, str, str]]:
    """The demo accounts as (email, password, role), created when missing (password reset to
    the demo one when present), plus a few canned responses."""
    from bot.store import support

    accounts = []
    for email, name, role, password in DEMO_STAFF:
        user = support.find_staff_by_email(session, email)
        if user is None:
            user = support.create_staff(session, email, name, role, password)
        else:
            support.set_password(session, user, password)
            support.set_staff_active(session, user.id or 0, True)
        accounts.append((email, password, role))
    if not support.list_canned(session):
        admin = support.find_staff_by_email(session, DEMO_STAFF[1][0])
        assert admin is not None
        for title, body in DEMO_CANNED:
            support.save_canned(session, title, body, admin)
    return accounts


@staff_app.command("add")
def add(
    email: Annotated[str, typer.Argument(help="Sign-in e-mail.")],
    name: Annotated[str, typer.Option("--name", help="Shown to colleagues and customers.")],
    role: Annotated[str, typer.Option("--role", help="agent, marketer or admin.")] = "agent",
    password: Annotated[
        str | None, typer.Option("--password", help="Prompted for (hidden) when left out.")
    ] = None,
) -> None:
    """Create a console account (the password is stored as an argon2 hash)."""
    from bot.cli import _engine
    from bot.settings import get_settings
    from bot.store import support
    from bot.store.db import session_scope

    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        with session_scope(_engine(get_settings())) as session:
            user = support.create_staff(session, email, name, role, password)
            support.audit(
                session,
                None,
                "staff_add",
                details={"email": user.email, "role": user.role.value},
                actor="cli",
            )
            summary = f"{user.email} ({user.role.value})"
    except support.SupportError as error:
        typer.echo(error.message, err=True)
        raise typer.Exit(2) from error
    typer.echo(f"staff account created: {summary}")


@staff_app.command("list")
def list_accounts() -> None:
    """Every console account with its role and status."""
    from bot.cli import _engine
    from bot.settings import get_settings
    from bot.store import support
    from bot.store.db import session_scope

    with session_scope(_engine(get_settings())) as session:
        for user in support.list_staff(session):
            state = "active" if user.active else "deactivated"
            typer.echo(f"{user.email:<32} {user.role.value:<9} {state:<11} {user.name}")


@staff_app.command("demo")
def demo() -> None:
    """Create (or reset) the demo agent and admin and print their sign-in details."""
    from bot.cli import _engine
    from bot.settings import get_settings
    from bot.store.db import session_scope

    settings = get_settings()
    with session_scope(_engine(settings)) as session:
        accounts = ensure_demo_staff(session)
    for email, password, role in accounts:
        typer.echo(f"console {role}: {email} / {password}  ({settings.public_url}/console)")
