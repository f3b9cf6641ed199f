"""accounts' own settings (beyond the chassis'), read with `chassis.settings.service_settings`."""

DECLARED = {
    "ADMIN_EMAIL": "",
    "ADMIN_PASSWORD": "",
    "DATA_KEY": "",
}
