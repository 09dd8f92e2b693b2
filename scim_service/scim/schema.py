"""Schemas and resource types (RFC 7643 §2, §4, §7, §8.7), as data.

One definition serves every consumer: input normalisation (case-insensitive names → the
schema's spelling, types, mutability), PATCH path resolution, the filter compiler, projection
and the `/Schemas` and `/ResourceTypes` discovery documents.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

AttrType = Literal[
    "string", "boolean", "decimal", "integer", "dateTime", "reference", "complex", "binary"
]
Mutability = Literal["readOnly", "readWrite", "immutable", "writeOnly"]
Returned = Literal["always", "never", "default", "request"]
Uniqueness = Literal["none", "server", "global"]

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_USER_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
# Ours: the end-to-end encrypted platform's account setup state (read-only to IdPs).
PLATFORM_USER_SCHEMA = "urn:ietf:params:scim:schemas:extension:secretsplatform:2.0:User"
# Microsoft Entra ID lists this in `schemas` of groups; it defines nothing we store.
ENTRA_GROUP_SCHEMA = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"

LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH_REQUEST = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
SCHEMA_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"
RESOURCE_TYPE_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"


@dataclass(frozen=True, slots=True)
class Attr:
    name: str
    type: AttrType = "string"
    multi_valued: bool = False
    required: bool = False
    case_exact: bool = False
    mutability: Mutability = "readWrite"
    returned: Returned = "default"
    uniqueness: Uniqueness = "none"
    description: str = ""
    canonical_values: tuple[str, ...] = ()
    reference_types: tuple[str, ...] = ()
    sub_attributes: tuple[Attr, ...] = ()
    _by_lower: dict[str, Attr] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for sub in self.sub_attributes:
            self._by_lower[sub.name.lower()] = sub

    def sub(self, name: str) -> Attr | None:
        """Sub-attribute by case-insensitive name (RFC 7643 §2.1)."""
        return self._by_lower.get(name.lower())

    @property
    def read_only(self) -> bool:
        return self.mutability == "readOnly"

    def to_scim(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "multiValued": self.multi_valued,
            "description": self.description,
            "required": self.required,
        }
        if self.type in ("string", "reference", "binary"):
            out["caseExact"] = self.case_exact
        if self.canonical_values:
            out["canonicalValues"] = list(self.canonical_values)
        if self.reference_types:
            out["referenceTypes"] = list(self.reference_types)
        out["mutability"] = self.mutability
        out["returned"] = self.returned
        if self.type != "complex":
            out["uniqueness"] = self.uniqueness
        if self.sub_attributes:
            out["subAttributes"] = [s.to_scim() for s in self.sub_attributes]
        return out


@dataclass(frozen=True, slots=True)
class Schema:
    id: str
    name: str
    description: str
    attributes: tuple[Attr, ...]
    _by_lower: dict[str, Attr] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for a in self.attributes:
            self._by_lower[a.name.lower()] = a

    def attr(self, name: str) -> Attr | None:
        return self._by_lower.get(name.lower())

    def to_scim(self, base_url: str) -> dict[str, Any]:
        return {
            "schemas": [SCHEMA_SCHEMA],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": [a.to_scim() for a in self.attributes],
            "meta": {"resourceType": "Schema", "location": f"{base_url}/Schemas/{self.id}"},
        }


@dataclass(frozen=True, slots=True)
class ResourceType:
    id: str
    endpoint: str
    description: str
    schema: Schema
    extensions: tuple[tuple[Schema, bool], ...] = ()  # (schema, required)

    def extension(self, urn: str) -> Schema | None:
        low = urn.lower()
        for ext, _ in self.extensions:
            if ext.id.lower() == low:
                return ext
        return None

    def to_scim(self, base_url: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": self.id,
            "name": self.id,
            "endpoint": self.endpoint,
            "description": self.description,
            "schema": self.schema.id,
        }
        if self.extensions:
            out["schemaExtensions"] = [
                {"schema": ext.id, "required": required} for ext, required in self.extensions
            ]
        out["meta"] = {
            "resourceType": "ResourceType",
            "location": f"{base_url}/ResourceTypes/{self.id}",
        }
        return out


# --- building blocks --------------------------------------------------------------------------


def _s(name: str, description: str = "", **kw: Any) -> Attr:
    return Attr(name, "string", description=description, **kw)


def _multi(name: str, description: str, types: tuple[str, ...], value: Attr | None = None) -> Attr:
    """The usual multi-valued complex shape: value, display, type, primary."""
    return Attr(
        name,
        "complex",
        multi_valued=True,
        description=description,
        sub_attributes=(
            value or _s("value", f"The {name} value"),
            _s("display", "A human-readable name, primarily used for display purposes"),
            _s("type", "A label indicating the attribute's function", canonical_values=types),
            Attr("primary", "boolean", description="Indicates the primary or preferred value"),
        ),
    )


ID = Attr(
    "id",
    case_exact=True,
    mutability="readOnly",
    returned="always",
    uniqueness="server",
    description="Unique identifier of the resource, issued by the service provider",
)
EXTERNAL_ID = _s(
    "externalId", "Identifier of the resource in the provisioning client", case_exact=True
)
META = Attr(
    "meta",
    "complex",
    mutability="readOnly",
    description="Resource metadata",
    sub_attributes=(
        _s("resourceType", case_exact=True, mutability="readOnly"),
        Attr("created", "dateTime", mutability="readOnly"),
        Attr("lastModified", "dateTime", mutability="readOnly"),
        Attr(
            "location",
            "reference",
            case_exact=True,
            mutability="readOnly",
            reference_types=("uri",),
        ),
        _s("version", case_exact=True, mutability="readOnly"),
    ),
)

USER = Schema(
    USER_SCHEMA,
    "User",
    "User Account",
    (
        _s("userName", "Unique identifier for the User", required=True, uniqueness="server"),
        Attr(
            "name",
            "complex",
            description="The components of the user's real name",
            sub_attributes=(
                _s("formatted"),
                _s("familyName"),
                _s("givenName"),
                _s("middleName"),
                _s("honorificPrefix"),
                _s("honorificSuffix"),
            ),
        ),
        _s("displayName", "The name of the User, suitable for display to end-users"),
        _s("nickName", "The casual way to address the user"),
        Attr("profileUrl", "reference", reference_types=("external",), description="Profile URL"),
        _s("title", "The user's title"),
        _s("userType", "Used to identify the relationship between the organization and the user"),
        _s("preferredLanguage", "Preferred written or spoken language (Accept-Language format)"),
        _s("locale", "Default location for localization (e.g. en-US)"),
        _s("timezone", "Time zone in IANA format (e.g. Europe/Paris)"),
        Attr("active", "boolean", description="The user's administrative status"),
        _s(
            "password",
            "Accepted and discarded: this service never stores or returns passwords",
            mutability="writeOnly",
            returned="never",
        ),
        _multi("emails", "Email addresses for the user", ("work", "home", "other")),
        _multi(
            "phoneNumbers",
            "Phone numbers for the user",
            ("work", "home", "mobile", "fax", "pager", "other"),
        ),
        _multi(
            "ims",
            "Instant messaging addresses for the user",
            ("aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"),
        ),
        _multi(
            "photos",
            "URLs of photos of the user",
            ("photo", "thumbnail"),
            Attr("value", "reference", reference_types=("external",), description="URL of a photo"),
        ),
        Attr(
            "addresses",
            "complex",
            multi_valued=True,
            description="Physical mailing addresses for this user",
            sub_attributes=(
                _s("formatted"),
                _s("streetAddress"),
                _s("locality"),
                _s("region"),
                _s("postalCode"),
                _s("country"),
                _s("type", canonical_values=("work", "home", "other")),
                Attr("primary", "boolean"),
            ),
        ),
        Attr(
            "groups",
            "complex",
            multi_valued=True,
            mutability="readOnly",
            description="Groups the user belongs to (read-only; change memberships on the Group)",
            sub_attributes=(
                _s("value", "The id of the group", mutability="readOnly"),
                Attr("$ref", "reference", reference_types=("Group",), mutability="readOnly"),
                _s("display", mutability="readOnly"),
                _s("type", canonical_values=("direct", "indirect"), mutability="readOnly"),
            ),
        ),
        _multi("entitlements", "Entitlements for the user", ()),
        _multi("roles", "Roles for the user", ()),
        _multi(
            "x509Certificates",
            "X.509 certificates issued to the user",
            (),
            # RFC 7643 §2.3.6: binary values are case exact.
            Attr("value", "binary", case_exact=True, description="DER-encoded certificate, base64"),
        ),
    ),
)

ENTERPRISE_USER = Schema(
    ENTERPRISE_USER_SCHEMA,
    "EnterpriseUser",
    "Enterprise User",
    (
        _s("employeeNumber"),
        _s("costCenter"),
        _s("organization"),
        _s("division"),
        _s("department"),
        Attr(
            "manager",
            "complex",
            description="The user's manager",
            sub_attributes=(
                _s("value", "The id of the manager"),
                Attr("$ref", "reference", reference_types=("User",)),
                _s("displayName", mutability="readOnly"),
            ),
        ),
    ),
)

PLATFORM_USER = Schema(
    PLATFORM_USER_SCHEMA,
    "PlatformUser",
    "Account state on the end-to-end encrypted platform (read-only)",
    (
        _s(
            "setupState",
            "'pending' until the user has finished account setup (created their master key) "
            "at first login; then 'complete'",
            mutability="readOnly",
            canonical_values=("pending", "complete"),
            case_exact=True,
        ),
        Attr(
            "setupCompletedAt",
            "dateTime",
            mutability="readOnly",
            description="When the user finished account setup",
        ),
    ),
)

GROUP = Schema(
    GROUP_SCHEMA,
    "Group",
    "Group",
    (
        _s(
            "displayName", "A human-readable name for the Group", required=True, uniqueness="server"
        ),
        Attr(
            "members",
            "complex",
            multi_valued=True,
            description="A list of members of the Group",
            sub_attributes=(
                _s("value", "Identifier of the member", mutability="immutable"),
                Attr(
                    "$ref",
                    "reference",
                    reference_types=("User",),
                    mutability="immutable",
                    description="The URI of the member",
                ),
                _s("display", "The member's display name", mutability="readOnly"),
                _s("type", canonical_values=("User",), mutability="immutable"),
            ),
        ),
    ),
)

USER_TYPE = ResourceType(
    "User", "/Users", "User Account", USER, ((ENTERPRISE_USER, False), (PLATFORM_USER, False))
)
GROUP_TYPE = ResourceType("Group", "/Groups", "Group", GROUP)

RESOURCE_TYPES: dict[str, ResourceType] = {"User": USER_TYPE, "Group": GROUP_TYPE}
SCHEMAS: dict[str, Schema] = {s.id: s for s in (USER, GROUP, ENTERPRISE_USER, PLATFORM_USER)}
COMMON_ATTRS: dict[str, Attr] = {"id": ID, "externalid": EXTERNAL_ID, "meta": META}


def resolve(rtype: ResourceType, name: str) -> tuple[Schema, Attr] | None:
    """A top-level attribute of a resource type by (case-insensitive) name.

    Accepts `userName`, `id`, `meta`, and URN-qualified names such as
    `urn:ietf:params:scim:schemas:core:2.0:User:userName` or
    `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber`.
    Returns (schema, attribute); common attributes report the resource's core schema.
    """
    low = name.lower()
    common = COMMON_ATTRS.get(low)
    if common is not None:
        return rtype.schema, common
    attr = rtype.schema.attr(name)
    if attr is not None:
        return rtype.schema, attr
    for schema in (rtype.schema, *(ext for ext, _ in rtype.extensions)):
        prefix = schema.id.lower() + ":"
        if low.startswith(prefix):
            rest = name[len(prefix) :]
            found = COMMON_ATTRS.get(rest.lower()) if schema is rtype.schema else None
            found = found or schema.attr(rest)
            if found is not None:
                return schema, found
    return None
