"""activities' own settings (beyond the chassis'), read with `service_settings`."""

DECLARED = {
    # Returnees read per batch when an activity's audience is invited: each batch is one
    # statement of invitations and one of events, in the one unit of work of the publication.
    "INVITATION_BATCH_SIZE": "500",
}
