"""consulting's own settings (beyond the chassis'), read with `service_settings`."""

DECLARED = {
    "SLA_CHECK_SECONDS": "15",
    # The station's working hours (Asia/Shanghai) on mainland-China working days: consultation
    # deadlines run only within them.
    "WORKING_HOURS": "09:00-17:30",
}
