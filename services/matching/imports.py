"""Resources imported from a spreadsheet (`POST /imports/resources`): the rules of
`POST /resources`, row by row, in one transaction, one answer per row. Re-importing a file
creates nothing twice: a resource on offer with the organization and title is the row's."""

import uuid

from marshmallow import ValidationError, fields, validate, validates_schema

from chassis import batches
from chassis.i18n import add_translations
from services.matching import store
from services.matching.events import published_data
from services.matching.schemas import MUST_NOT_BE_PAST, UNKNOWN_ORGANIZATION, ResourceIn

NAME_OR_ID = "Give organization_id or organization_name."
OWN_ORGANIZATION_ONLY = "Providers publish only their own organization's resources."
add_translations(
    {
        NAME_OR_ID: "请提供 organization_id 或 organization_name。",
        OWN_ORGANIZATION_ONLY: "机构用户只能发布本机构的资源。",
    }
)


class ImportedResource(ResourceIn):
    """A resource as a spreadsheet has it: its organization by id or by name."""

    organization_id = fields.UUID(allow_none=True, load_default=None)
    organization_name = fields.String(
        allow_none=True,
        load_default=None,
        validate=validate.Length(min=1, max=200),
        metadata={"description": "The registered organization's name, instead of its id."},
    )

    @validates_schema
    def _organization_named(self, data, **kwargs):
        if not data.get("organization_id") and not data.get("organization_name"):
            raise ValidationError(NAME_OR_ID, "organization_id")


ROW = ImportedResource()


def import_resources(command: dict, caller, tx, today) -> dict:
    """The batch's resources → `resource.published` each one created."""
    results, valid = [], []
    for index, row in enumerate(command["rows"]):
        try:
            resource = ROW.load(row)
        except ValidationError as error:
            results.append(batches.refused(index, error.messages))
            continue
        if resource["valid_until"] and resource["valid_until"] < today:
            results.append(batches.refused(index, {"valid_until": [MUST_NOT_BE_PAST]}))
            continue
        valid.append((index, resource))
    names = store.organizations_named(
        tx, {r["organization_name"] for _, r in valid if not r["organization_id"]}
    )
    ids = store.organizations_known(
        tx, {str(r["organization_id"]) for _, r in valid if r["organization_id"]}
    )
    placed = []
    for index, resource in valid:
        if resource["organization_id"]:
            organization_id = str(resource["organization_id"])
            field = "organization_id"
            known = organization_id in ids
        else:
            organization_id = names.get(resource["organization_name"])
            field = "organization_name"
            known = organization_id is not None
        if not known:
            results.append(batches.refused(index, {field: [UNKNOWN_ORGANIZATION]}))
        elif caller.role == "provider" and caller.organization_id != organization_id:
            results.append(batches.refused(index, {field: [OWN_ORGANIZATION_ONLY]}))
        else:
            placed.append((index, {**resource, "organization_id": organization_id}))
    existing = store.resources_titled(tx, {(r["organization_id"], r["title"]) for _, r in placed})
    for index, resource in placed:
        key = (resource["organization_id"], resource["title"])
        if key in existing:
            results.append(batches.existing(index, existing[key]))
            continue
        data = {k: v for k, v in resource.items() if k != "organization_name"}
        row = store.insert_resource(tx, str(uuid.uuid4()), data)
        tx.publish("resource.published", published_data(row), subject=row["id"])
        existing[key] = row["id"]
        results.append(batches.created(index, row["id"]))
    return batches.outcome(results)
