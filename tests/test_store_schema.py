"""The migrations, the models and the column types agree on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Engine, MetaData, String
from sqlalchemy.exc import IntegrityError, StatementError
from sqlmodel import SQLModel, col, select

from bot.store.db import alembic_config, make_engine, migrate, session_scope
from bot.store.models import Customer, Product, ProductVariant

pytest_plugins = ("tests.store_fixtures",)


def test_migrated_schema_matches_models(store_engine: Engine) -> None:
    with store_engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []


def test_schema_comparison_notices_differences(store_engine: Engine) -> None:
    """Guards the test above: a missing column or a changed length must show up."""
    altered = MetaData(naming_convention=SQLModel.metadata.naming_convention)
    for table in SQLModel.metadata.sorted_tables:
        table.to_metadata(altered)
    altered.tables["customer"].append_column(Column("nickname", String(40)))
    altered.tables["shop_order"].c.number.type = String(12)
    with store_engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diffs = compare_metadata(context, altered)
    assert {d[0] for d in diffs if isinstance(d, tuple)} == {"add_column"}
    assert any(isinstance(d, list) and d[0][0] == "modify_type" for d in diffs)


def test_migrate_twice_is_a_no_op_and_reaches_head(store_engine: Engine) -> None:
    migrate(store_engine)
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    with store_engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == head


def test_migration_covers_every_table(store_engine: Engine) -> None:
    expected = {
        "customer", "channel_identity", "product", "product_variant", "shop_order",
        "order_item", "shipment", "return_request", "conversation", "message",
        "verification_attempt",
    }  # fmt: skip
    assert expected <= set(SQLModel.metadata.tables)
    with store_engine.connect() as connection:
        assert set(connection.dialect.get_table_names(connection)) >= expected


def _customer(email: str, created_at: datetime) -> Customer:
    return Customer(
        email=email,
        first_name="A",
        last_name="B",
        postcode="1",
        country="DE",
        created_at=created_at,
    )


def test_datetimes_come_back_aware_utc(store_engine: Engine) -> None:
    berlin_summer = timezone(timedelta(hours=2))
    written = datetime(2025, 6, 1, 14, 30, 5, 123456, tzinfo=berlin_summer)
    with session_scope(store_engine) as session:
        session.add(_customer("tz@example.com", written))
    with session_scope(store_engine) as session:
        stored = session.exec(select(Customer.created_at)).one()
    assert stored.tzinfo is not None and stored.utcoffset() == timedelta(0)
    assert stored == written
    assert stored.hour == 12


def test_naive_datetimes_are_refused(store_engine: Engine) -> None:
    with pytest.raises(StatementError, match="naive datetime"):  # noqa: SIM117
        with session_scope(store_engine) as session:
            session.add(_customer("naive@example.com", datetime(2025, 6, 1, 12, 0)))


def test_money_round_trips_exactly(store_engine: Engine) -> None:
    with session_scope(store_engine) as session:
        session.add(
            Product(
                sku="X-1", title="t", description="d", category="c", brand="b",
                material="m", colour="c", price=Decimal("12345678.95"),
            )
        )  # fmt: skip
    with session_scope(store_engine) as session:
        price = session.exec(select(col(Product.price))).one()
    assert price == Decimal("12345678.95") and str(price) == "12345678.95"


def test_foreign_keys_and_checks_are_enforced(store_engine: Engine) -> None:
    with pytest.raises(IntegrityError), session_scope(store_engine) as session:
        session.add(ProductVariant(product_id=999_999, sku="V-1", size="M", colour="c", stock=1))
    with session_scope(store_engine) as session:
        product = Product(
            sku="X-2", title="t", description="d", category="c", brand="b",
            material="m", colour="c", price=Decimal("1.00"),
        )  # fmt: skip
        session.add(product)
        session.flush()
        product_id = product.id
    assert product_id is not None
    with pytest.raises(IntegrityError), session_scope(store_engine) as session:
        session.add(
            ProductVariant(product_id=product_id, sku="V-2", size="M", colour="c", stock=-1)
        )


def test_session_scope_rolls_back_on_error(store_engine: Engine) -> None:
    now = datetime.now(UTC)
    with pytest.raises(RuntimeError), session_scope(store_engine) as session:
        session.add(_customer("rollback@example.com", now))
        session.flush()
        raise RuntimeError("boom")
    with session_scope(store_engine) as session:
        assert session.exec(select(Customer)).all() == []


def test_sqlite_engine_creates_its_folder_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "shop.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        migrate(engine)
        assert path.exists()
        with engine.connect() as connection:
            mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
            foreign_keys = connection.exec_driver_sql("PRAGMA foreign_keys").scalar()
        assert (mode, foreign_keys) == ("wal", 1)
    finally:
        engine.dispose()


def test_postgres_urls_get_the_psycopg_driver() -> None:
    engine = make_engine("postgresql://user@localhost/db")
    try:
        assert engine.url.drivername == "postgresql+psycopg"
    finally:
        engine.dispose()
