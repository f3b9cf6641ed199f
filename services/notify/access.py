"""Who may act on whose notifications.

Staff and organizations are recipients too (an advisor has an inbox), so "self" here is any
caller whose id is the recipient's, whatever their role; `@http(owner=...)` knows only
returnees as owners, hence this rule."""

from chassis.auth import Caller


def may_act_for(caller: Caller, recipient_id) -> bool:
    """The recipient themself, or an admin."""
    return caller.id == str(recipient_id) or caller.role == "admin"
