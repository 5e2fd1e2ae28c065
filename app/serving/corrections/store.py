"""Where corrections are kept: SQLite by default (WAL, in the data directory), PostgreSQL
for deployments of several replicas, the same code on both through SQLAlchemy 2.

A correction is acknowledged only once its transaction is committed: with SQLite in WAL mode
a commit survives the server being killed right after; with PostgreSQL, the server's own
durability. Migrations (Alembic) run at start-up, one process at a time.
"""

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, case, create_engine, event, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from app.serving.corrections import CorrectionStats, NewCorrection, StoreUnavailableError
from app.serving.corrections.tables import Correction

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Any number, the same in every replica: PostgreSQL's lock for one migration at a time.
MIGRATION_LOCK_KEY = 20_261_130
SQLITE_BUSY_MILLISECONDS = 10_000
# Core, not an ORM Session adding a Correction (its unit of work, its identity map): store.add
# called directly takes 0.27 against 0.8-1.0 ms on SQLite, a tenth of a POST /api/feedback.
ADD_CORRECTION = insert(Correction).returning(Correction.id)


def reason(error: Exception) -> str:
    """The database's own words for an error, on one line (without SQLAlchemy's wrapping
    and its link to background reading)."""
    cause = getattr(error, "orig", None) or error
    return " ".join(line.strip() for line in str(cause).splitlines() if line.strip())


def sqlite_pragmas(connection: object, _: object) -> None:
    """WAL: readers never wait for the writer, and a commit is one append to the log,
    durable once written (NORMAL syncs at checkpoints: a killed process loses nothing,
    only a power cut could). Writers of several workers wait their turn, not fail."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MILLISECONDS}")
    cursor.close()


def create_store_engine(url: str) -> Engine:
    engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        database = make_url(url).database
        if database and not database.startswith("file:") and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        event.listen(engine, "connect", sqlite_pragmas)
    return engine


class CorrectionsStore:
    def __init__(self, url: str, max_rows: int) -> None:
        self.engine = create_store_engine(url)
        self.max_rows = max_rows

    def migrate(self) -> None:
        """Bring the schema to the latest migration; several processes may call it at once."""
        with self.migration_lock(), self.engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS_DIR))
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            connection.commit()

    @contextmanager
    def migration_lock(self) -> Iterator[None]:
        """For SQLite, a lock file beside the database (PostgreSQL locks in the database)."""
        database = self.engine.url.database
        if self.engine.dialect.name != "sqlite" or not database or database.startswith("file:"):
            yield
            return
        with Path(f"{database}.migrating").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def add(self, new: NewCorrection) -> int:
        """Store one correction; its id once committed.

        The row cap is checked on the id the row got, in the transaction that inserts it:
        past the cap, the row is rolled back. SQLite gives a table without AUTOINCREMENT
        the highest id plus one, so this refuses exactly when max(id) reached the cap;
        PostgreSQL's sequence never hands two writers the same id. A SELECT max(id) before
        the INSERT let writers at once pass the cap, both reading the same max (8 threads,
        a cap of 20: 27 rows in SQLite, 21 in PostgreSQL).
        """
        try:
            with self.engine.begin() as connection:
                added = connection.execute(ADD_CORRECTION, vars(new)).scalar_one()
                if added > self.max_rows:
                    raise StoreUnavailableError(
                        f"the corrections store is full ({self.max_rows:,} corrections)"
                    )
                return added
        except OperationalError as error:
            raise StoreUnavailableError(
                f"the corrections store cannot take it now ({reason(error)})"
            ) from None

    def stats(self, served_sha256: str) -> CorrectionStats:
        served = Correction.model_sha256 == served_sha256
        try:
            with Session(self.engine) as session:
                per_label = dict(
                    session.execute(
                        select(Correction.label, func.count()).group_by(Correction.label)
                    ).all()
                )
                by_served, right = session.execute(
                    select(
                        func.count(case((served, 1))),
                        func.count(
                            case((served & (Correction.label == Correction.model_digit), 1))
                        ),
                    )
                ).one()
        except OperationalError as error:
            raise StoreUnavailableError(
                f"the corrections store cannot be read now ({reason(error)})"
            ) from None
        counts = [int(per_label.get(digit, 0)) for digit in range(10)]
        return CorrectionStats(sum(counts), counts, int(by_served), int(right))

    def all(self) -> Iterator[Correction]:
        """Every correction, oldest first."""
        with Session(self.engine) as session:
            yield from session.scalars(select(Correction).order_by(Correction.id))

    def close(self) -> None:
        self.engine.dispose()


def open_store(url: str, max_rows: int) -> CorrectionsStore:
    """The store at `url`, its schema migrated."""
    try:
        store = CorrectionsStore(url, max_rows)
        store.migrate()
    except (SQLAlchemyError, OSError, ImportError) as error:
        raise StoreUnavailableError(
            f"the corrections store cannot be opened ({reason(error)})"
        ) from None
    return store
