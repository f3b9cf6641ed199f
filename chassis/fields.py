"""marshmallow fields the services' HTTP schemas share."""

from datetime import UTC

from marshmallow import fields, validate


class Instant(fields.AwareDateTime):
    """An aware date-time, loaded in UTC: PostgreSQL takes offsets only up to ±15:59 (ISO 8601
    allows ±23:59), and a time whose UTC falls outside the years 1-9999 is no valid instant."""

    def _deserialize(self, value, attr, data, **kwargs):
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise self.make_error("invalid", input=value, obj_type=self.OBJ_TYPE) from None


# http(s), a host name or address, an optional port, then printable ASCII: what a district
# system's webhook or a policy's citation needs, and the same rule in the document and the code.
HTTP_URL = r"^https?://[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?(?:[/?#][!-~]*)?$"


class HttpUrl(fields.String):
    """An absolute http or https URL, as `HTTP_URL` says (the OpenAPI document states it as the
    pattern: JSON Schema has no `url` format, and marshmallow's Url takes its own view)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("metadata", {})
        super().__init__(
            validate=[validate.Length(max=2000), validate.Regexp(HTTP_URL)],
            metadata={"pattern": HTTP_URL, **kwargs.pop("metadata")},
            **kwargs,
        )
