"""consulting's own settings (beyond the chassis'), read with `service_settings`."""

DECLARED = {
    "SLA_CHECK_SECONDS": "15",
}
