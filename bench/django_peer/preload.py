"""Migrate the django-scim2 peer's database and bulk-load the benchmark's data set into it.

Runs in the peer's own environment (bench/.venv-django). Users come from bench/dataset.py, as
for the other targets: user i has scim_id = dataset.user_id(i) (so the same GET paths work),
the same userName, name and primary email, and primary key i + 1 (users POSTed
through the API get theirs from FIRST_API_ID on); the groups are the same two
(ids dataset.group_id(name)) with members 0..N-1. Written with COPY, not through HTTP (POSTing
100,000 users would take most of the time budget), then ANALYZE.

    python bench/django_peer/preload.py --migrate --start 0 --end 10000
    python bench/django_peer/preload.py --start 10000 --end 100000 --big-group 50000
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")

import dataset  # noqa: E402
import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from peerapp.models import Group, User  # noqa: E402

# Django's "unusable password" marker, as create_user(password=None) stores it.
UNUSABLE = "!bench"
FIRST_API_ID = 1_000_000_001


def load_users(start: int, end: int) -> None:
    now = datetime.now(UTC)
    table = User._meta.db_table
    columns = (
        "id, password, is_superuser, username, first_name, last_name, email, is_staff, "
        "is_active, date_joined, scim_id, scim_external_id, scim_username"
    )
    with connection.cursor() as cur:
        raw = cur.cursor  # psycopg 3: COPY through the driver
        with raw.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for i in range(start, end):
                body = dataset.user_body(i)
                name = body["userName"]
                copy.write_row(
                    (
                        i + 1,
                        UNUSABLE,
                        False,
                        name,
                        body["name"]["givenName"],
                        body["name"]["familyName"],
                        name,
                        False,
                        True,
                        now,
                        str(dataset.user_id(i)),
                        body["externalId"],
                        name,
                    )
                )


def load_group(name: str, members: int) -> None:
    group = Group.objects.create(name=name)
    # The mixin's save() sets scim_id to the primary key on creation: set the benchmark's id.
    Group.objects.filter(pk=group.pk).update(scim_id=str(dataset.group_id(name)))
    through = User.scim_groups.through._meta.db_table
    with (
        connection.cursor() as cur,
        cur.cursor.copy(f"COPY {through} (user_id, group_id) FROM STDIN") as copy,
    ):
        for i in range(members):
            copy.write_row((i + 1, group.pk))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--migrate", action="store_true")
    p.add_argument("--start", type=int, required=True)
    p.add_argument("--end", type=int, required=True)
    p.add_argument("--big-group", type=int, default=0, help="also create the groups")
    p.add_argument("--team-group", type=int, default=dataset.TEAM_SIZE)
    args = p.parse_args()
    started = time.perf_counter()
    if args.migrate:
        call_command("migrate", verbosity=0, interactive=False)
        # Users created through the API take primary keys far above the preloaded ones (i + 1),
        # so a later preload (the 90,000 more) never collides with a POSTed user.
        with connection.cursor() as cur:
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{User._meta.db_table}', 'id'), "
                f"{FIRST_API_ID}, false)"
            )
    load_users(args.start, args.end)
    if args.big_group:
        load_group(dataset.BIG_GROUP_NAME, min(args.big_group, args.end))
        load_group(dataset.TEAM_GROUP_NAME, min(args.team_group, args.end))
    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    print(
        f"django peer loaded users {args.start}..{args.end - 1}"
        f"{' and groups' if args.big_group else ''} "
        f"seconds={time.perf_counter() - started:.1f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
