"""Say clearly which of PostgreSQL and Redis `make test` cannot reach, and how to start them."""

from __future__ import annotations

import os
import sys

import psycopg
import redis


def main() -> int:
    problems = []
    db_url = os.environ["DATABASE_URL"]
    if not db_url.startswith(("postgres://", "postgresql://")):
        problems.append(f"DATABASE_URL must point at PostgreSQL for the tests, got {db_url!r}.")
    else:
        try:
            # Connect to the maintenance database: the test database is created by the tests.
            url = db_url.rsplit("/", 1)[0] + "/postgres"
            psycopg.connect(url, connect_timeout=3).close()
        except psycopg.Error as exc:
            problems.append(
                f"PostgreSQL is not reachable at {db_url} ({str(exc).strip()}).\n"
                "    Start it (e.g. `pg_ctlcluster 15 main start`) or set DATABASE_URL."
            )
    redis_url = os.environ["REDIS_URL"]
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        problems.append(
            f"Redis is not reachable at {redis_url} ({exc}).\n"
            "    Start it (e.g. `redis-server --daemonize yes`) or set REDIS_URL."
        )
    if problems:
        sys.stderr.write("make test needs these services:\n- " + "\n- ".join(problems) + "\n")
        return 1
    print(f"services: PostgreSQL at {db_url}, Redis at {redis_url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
