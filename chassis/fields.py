"""marshmallow fields the services' HTTP schemas share."""

from datetime import UTC

from marshmallow import fields


class Instant(fields.AwareDateTime):
    """An aware date-time, loaded in UTC: PostgreSQL takes offsets only up to ±15:59 (ISO 8601
    allows ±23:59), and a time whose UTC falls outside the years 1-9999 is no valid instant."""

    def _deserialize(self, value, attr, data, **kwargs):
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise self.make_error("invalid", input=value, obj_type=self.OBJ_TYPE) from None
