"""`python -m app.feedback export --out DIR`: the corrections people made, as MNIST files
(see app.serving.corrections.export)."""

import argparse
import sys
from pathlib import Path

from app.serving.corrections import StoreUnavailableError
from app.serving.corrections.export import (
    TEST_EVERY,
    NothingToExportError,
    export_corrections,
)
from app.serving.corrections.store import open_store
from app.serving.settings import Settings


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m app.feedback", description="Work with the corrections people made."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser(
        "export",
        help="write the corrections as the four MNIST IDX files",
        description=f"Write the corrections as MNIST's four IDX files; every {TEST_EVERY}th "
        "(by id) goes to the test files.",
    )
    export.add_argument("--out", type=Path, required=True, help="directory to write into")
    export.add_argument(
        "--database-url",
        help="the corrections store; default: the server's (DIGIT_CANVAS_DATABASE_URL)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    settings = Settings()
    url = arguments.database_url or settings.database_url
    try:
        store = open_store(url, settings.max_corrections)
    except StoreUnavailableError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        counts = export_corrections(store, arguments.out)
    except NothingToExportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"error: {arguments.out}: {error.strerror}", file=sys.stderr)
        return 2
    finally:
        store.close()
    print(f"{counts.train} training and {counts.test} test corrections written to {arguments.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
