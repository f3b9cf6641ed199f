"""Resources imported from a spreadsheet (`POST /imports/resources`): a row as the spreadsheet
has it, its organization by id or by name. Each row is held to the rules of `POST /resources`
by `handlers.import_resources`, in one unit of work, one answer per row."""

from marshmallow import ValidationError, fields, validate, validates_schema

from services.matching.schemas import ResourceIn

NAME_OR_ID = "Give organization_id or organization_name."
OWN_ORGANIZATION_ONLY = "Providers publish only their own organization's resources."


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
