"""Who an activity is for: its audience, by industry, startup stage and needs (empty: anyone)."""


def fits(audience: dict, returnee: dict) -> bool:
    """Whether the returnee (`industry`, `startup_stage`, `needs`) is in the audience."""
    industries, stages, needs = audience["industries"], audience["stages"], audience["needs"]
    return (
        (not industries or returnee["industry"] in industries)
        and (not stages or returnee["startup_stage"] in stages)
        and (not needs or bool(set(needs) & set(returnee["needs"])))
    )


def invited(audience: dict, returnee: dict) -> bool:
    """In the audience and consenting to be told (notifications)."""
    return returnee["notifications_consent"] and fits(audience, returnee)
