"""matching's own settings (beyond the chassis'), read with `chassis.settings.service_settings`.
Empty means "as `MATCH_CONFIG_FILE` (or `matching.yml`) says"."""

DECLARED = {
    "MATCH_WEIGHTS": "",
    "MATCH_TOP_K": "",
    "MATCH_MAX_ORGANIZATION_SHARE": "",
    "MATCH_REMATCH_BATCH": "",
    "MATCH_CONFIG_FILE": "",
}
