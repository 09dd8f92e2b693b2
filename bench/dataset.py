"""The benchmark's data set, shared by the service loader (bench/loader.py) and the peer's
launcher (bench/peer_launcher.py). Pure Python: it runs in both virtual environments.

User i (0-based) is deterministic, so every process and pgbench agree without a lookup:

- id        = md5(str(i)) as a UUID (PostgreSQL: ``md5(i::text)::uuid``)
- userName  = ``<given>.<family>.<i:06d>@example.com`` (also the primary work email), where
  ``k = i // 10``, ``given = GIVEN[k % 64]``, ``family = FAMILY[(k // 64) % 64]``

so ten consecutive users (10k .. 10k+9) share a name and a five-digit prefix. That makes the
filter values selective at any size, each matching exactly 10 users:

- ``userName co ".KKKKK"``                      (the k-th block of ten)
- ``emails.value sw "given.family.KKKKK"``      (the same ten, by their email prefix)
- ``userName eq "<userName of i>"``             (exactly one)
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

GIVEN = [
    "Anna",
    "Ben",
    "Carla",
    "David",
    "Elena",
    "Farid",
    "Greta",
    "Hugo",
    "Ines",
    "Jonas",
    "Kira",
    "Liam",
    "Maria",
    "Noah",
    "Olga",
    "Pablo",
    "Quinn",
    "Rosa",
    "Samir",
    "Tara",
    "Umar",
    "Vera",
    "Walter",
    "Xenia",
    "Yusuf",
    "Zoe",
    "Adam",
    "Bianca",
    "Caleb",
    "Dora",
    "Emil",
    "Fiona",
    "Gavin",
    "Hanna",
    "Igor",
    "Julia",
    "Karl",
    "Lena",
    "Marco",
    "Nina",
    "Oscar",
    "Paula",
    "Rafael",
    "Sofia",
    "Tomas",
    "Ulla",
    "Viktor",
    "Wanda",
    "Yara",
    "Zeno",
    "Alma",
    "Bruno",
    "Cleo",
    "Dario",
    "Edith",
    "Felix",
    "Gina",
    "Henrik",
    "Iris",
    "Jakob",
    "Klara",
    "Luca",
    "Mila",
    "Nils",
]
FAMILY = [
    "Kowalski",
    "Nguyen",
    "Schmidt",
    "Garcia",
    "Rossi",
    "Dubois",
    "Silva",
    "Novak",
    "Jensen",
    "Murphy",
    "Kim",
    "Tanaka",
    "Okafor",
    "Haddad",
    "Petrov",
    "Larsen",
    "Moreau",
    "Costa",
    "Horvat",
    "Berg",
    "Fischer",
    "Lopez",
    "Bianchi",
    "Martin",
    "Santos",
    "Kovac",
    "Nielsen",
    "Walsh",
    "Park",
    "Sato",
    "Mensah",
    "Aziz",
    "Ivanov",
    "Olsen",
    "Lambert",
    "Pereira",
    "Juric",
    "Lund",
    "Weber",
    "Ramos",
    "Ricci",
    "Bernard",
    "Rocha",
    "Popescu",
    "Hansen",
    "Byrne",
    "Choi",
    "Ito",
    "Boateng",
    "Karimi",
    "Smirnov",
    "Eriksen",
    "Girard",
    "Sousa",
    "Varga",
    "Strand",
    "Wagner",
    "Diaz",
    "Greco",
    "Roux",
    "Lima",
    "Toth",
    "Dahl",
    "Keller",
]
assert len(GIVEN) == 64 and len(FAMILY) == 64

# Groups every target holds (same ids everywhere): the 50,000-member group, and the
# "team" group that PATCH add-member requests grow (it starts with TEAM_SIZE members).
BIG_GROUP_NAME = "All Employees"
TEAM_GROUP_NAME = "Team Provisioning"
TEAM_SIZE = 1000


def stable_uuid(text: str) -> uuid.UUID:
    """md5(text) as a UUID: PostgreSQL computes the same with ``md5(text)::uuid``."""
    return uuid.UUID(hashlib.md5(text.encode()).hexdigest())  # noqa: S324 - ids, not security


def user_id(i: int) -> uuid.UUID:
    return stable_uuid(str(i))


def group_id(name: str) -> uuid.UUID:
    return stable_uuid("group:" + name)


def names(i: int) -> tuple[str, str]:
    k = i // 10
    return GIVEN[k % 64], FAMILY[(k // 64) % 64]


def user_name(i: int) -> str:
    given, family = names(i)
    return f"{given.lower()}.{family.lower()}.{i:06d}@example.com"


def user_body(i: int) -> dict[str, Any]:
    """The POST /Users body an identity provider would send for user i."""
    given, family = names(i)
    un = user_name(i)
    return {
        "schemas": [USER_SCHEMA],
        "externalId": f"ext-{i:06d}",
        "userName": un,
        "name": {"givenName": given, "familyName": family, "formatted": f"{given} {family}"},
        "displayName": f"{given} {family}",
        "emails": [{"value": un, "type": "work", "primary": True}],
        "active": True,
    }


def post_body(user_name_value: str) -> dict[str, Any]:
    """A new user's body (the POST scenario), shaped like the loaded ones."""
    return {
        "schemas": [USER_SCHEMA],
        "externalId": "ext-" + user_name_value.split("@")[0],
        "userName": user_name_value,
        "name": {"givenName": "Post", "familyName": "Bench", "formatted": "Post Bench"},
        "displayName": "Post Bench",
        "emails": [{"value": user_name_value, "type": "work", "primary": True}],
        "active": True,
    }


def group_body(name: str) -> dict[str, Any]:
    return {"schemas": [GROUP_SCHEMA], "displayName": name}


def display_name(i: int) -> str:
    given, family = names(i)
    return f"{given} {family}"


# --- filter values ----------------------------------------------------------------------------


def eq_filter(i: int) -> str:
    return f'userName eq "{user_name(i)}"'


def co_filter(k: int) -> str:
    return f'userName co ".{k:05d}"'


def sw_filter(k: int) -> str:
    given, family = names(k * 10)
    return f'emails.value sw "{given.lower()}.{family.lower()}.{k:05d}"'


def add_member_body(uid: str) -> dict[str, Any]:
    return {
        "schemas": [PATCH_SCHEMA],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": uid}]}],
    }


def add_members_body(uids: list[str]) -> dict[str, Any]:
    return {
        "schemas": [PATCH_SCHEMA],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": u} for u in uids]}],
    }
