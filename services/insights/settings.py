"""insights' own settings (beyond the chassis'), read with `service_settings`."""

DECLARED = {
    # How often the upkeep runs (coverage at start, erased digests forgotten).
    "UPKEEP_SECONDS": "3600",
    # How long a digest of an erased person's id is kept so that a late event about them (from
    # another producer) is counted without their id.
    "ERASURE_GRACE_DAYS": "7",
}
