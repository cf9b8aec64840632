"""Store fixtures: a migrated database on SQLite and on PostgreSQL.

A pytest plugin: test modules load it with `pytest_plugins = ("tests.store_fixtures",)`
(the lead owns conftest.py). PostgreSQL gets a schema of its own
per test session (reached through `search_path`), dropped at the end, so runs never collide
and never see stale tables. Set STORE_TEST_POSTGRES_URL to use another server.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, delete
from sqlalchemy.exc import OperationalError
from sqlalchemy.schema import CreateSchema, DropSchema
from sqlmodel import SQLModel

from bot.demo_data import write_demo_shop
from bot.store.db import make_engine, migrate, session_scope
from tests.conftest_store import TODAY

POSTGRES_URL = os.environ.get(
    "STORE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('store') / 'shop.db'}")
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def postgres_store() -> Iterator[Engine]:
    admin = make_engine(POSTGRES_URL)
    try:
        with admin.connect():
            pass
    except OperationalError as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {exc.orig}")
    schema = f"store_test_{secrets.token_hex(6)}"
    with admin.begin() as connection:
        connection.execute(CreateSchema(schema))
    engine = make_engine(POSTGRES_URL, connect_args={"options": f"-csearch_path={schema}"})
    try:
        migrate(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(DropSchema(schema, cascade=True))
        admin.dispose()


def clear(engine: Engine) -> None:
    with engine.begin() as connection:
        for table in reversed(SQLModel.metadata.sorted_tables):
            connection.execute(delete(table))


@pytest.fixture(params=BACKENDS)
def store_engine(request: pytest.FixtureRequest) -> Engine:
    """A migrated, empty database; the test runs once per backend."""
    fixture = {"sqlite": "sqlite_store", "postgresql": "postgres_store"}[request.param]
    engine: Engine = request.getfixturevalue(fixture)
    clear(engine)
    return engine


@pytest.fixture
def pg_engine(postgres_store: Engine) -> Engine:
    """PostgreSQL only: for tests of row locks and races that SQLite serialises anyway."""
    clear(postgres_store)
    return postgres_store


@pytest.fixture
def demo_engine(store_engine: Engine) -> Engine:
    with session_scope(store_engine) as session:
        write_demo_shop(session, TODAY)
    return store_engine


@pytest.fixture
def pg_demo_engine(pg_engine: Engine) -> Engine:
    with session_scope(pg_engine) as session:
        write_demo_shop(session, TODAY)
    return pg_engine
