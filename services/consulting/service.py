"""consulting service entrypoints: policy catalog, explained eligibility, consultations with SLA,
station appointments."""

import time
import uuid
from datetime import UTC, datetime, timedelta, timezone

from nameko.extensions import DependencyProvider
from nameko.timer import timer

from chassis.auth import Authenticator
from chassis.db import Database
from chassis.events import subscribe
from chassis.i18n import add_translations
from chassis.loops import Alarm, loop
from chassis.settings import setting
from chassis.web import Conflict, NotFound, Operable, Unprocessable, http
from services.consulting import assessing, store
from services.consulting import consultations as tickets
from services.consulting.catalog import policy_id as seeded_policy_id
from services.consulting.eligibility import (
    InvalidPolicy,
    assess,
    derive,
    explain,
    validate_policy,
)
from services.consulting.schemas import (
    AppointmentIn,
    AppointmentOut,
    AssignIn,
    ConsultationIn,
    ConsultationQuery,
    EligibilityQuery,
    MessageIn,
    PolicyIn,
    PolicyOut,
    PolicyQuery,
    RatingIn,
    SlotIn,
    SlotOut,
)

SHANGHAI = timezone(timedelta(hours=8))
SLA_CHECK_SECONDS = float(setting("consulting", "SLA_CHECK_SECONDS", "15"))
SLA_CHECK_BATCH = 200
# The re-assessment loop also runs this often without being woken: after a restart, what was
# under way carries on.
REASSESS_SWEEP_SECONDS = 5.0

add_translations(
    {
        "No such policy.": "没有该政策。",
        "A policy with this code exists already.": "该政策代码已存在。",
        "The policy's criteria cannot be evaluated.": "该政策的条件无法执行。",
        "No eligibility facts for this returnee yet.": "尚无该留学人员的资格信息。",
        "No such consultation.": "没有该咨询。",
        "No advisor is available.": "暂无可分配的顾问。",
        "No such advisor.": "没有该顾问。",
        "No such slot.": "没有该时段。",
        "This slot is full or already past.": "该时段已约满或已过期。",
        "You have booked this slot already.": "您已预约该时段。",
        "No such appointment.": "没有该预约。",
        "This appointment is cancelled already.": "该预约已取消。",
        "The consultation can be rated only once, after it is closed.": "咨询关闭后只能评价一次。",
        "Assign the consultation to an advisor first.": "请先将该咨询分配给顾问。",
    }
)


class Clock(DependencyProvider):
    """`self.clock()` → the current aware time; tests freeze it with config `CLOCK`."""

    def setup(self):
        self.now = self.container.config.get("CLOCK") or (lambda: datetime.now(UTC))

    def get_dependency(self, worker_ctx):
        return self.now


def _refused(exc: tickets.TransitionRefused) -> Conflict:
    return Conflict(
        f"The consultation cannot be changed this way now ({exc}).",
        zh=f"该咨询当前状态不允许此操作（{exc.status}）。",
    )


def _consultation_out(row: dict, thread: list[dict] | None = None) -> dict:
    out = {
        k: row[k]
        for k in (
            "id",
            "returnee_id",
            "topic",
            "question",
            "policy_id",
            "status",
            "advisor_id",
            "created_at",
            "first_response_due",
            "resolution_due",
            "first_responded_at",
            "closed_at",
            "escalated",
            "rating",
            "rating_comment",
        )
    }
    out["sla_paused"] = row["paused_at"] is not None
    if thread is not None:
        out["messages"] = thread
    return out


class ConsultingService(Operable):
    """Policy catalog (rules as code), explained eligibility, consultations, appointments."""

    name = "consulting"
    db = Database()
    auth = Authenticator()
    clock = Clock()
    wake_reassessment = Alarm("reassess_queued")

    # ------------------------------------------------------------------ policies

    @http(
        "GET",
        "/policies",
        query=PolicyQuery,
        response=PolicyOut(many=True),
        summary="The policy catalog (public)",
    )
    def list_policies(self, request, query):
        with self.db.transaction() as tx:
            on = self.clock().astimezone(SHANGHAI).date() if query["in_effect"] else None
            return store.policies(tx, effective_on=on)

    @http("GET", "/policies/<policy_id>", response=PolicyOut(), summary="One policy with its rules")
    def get_policy(self, request, policy_id):
        _uuid_or_404(policy_id, "No such policy.", "没有该政策。")
        with self.db.transaction() as tx:
            found = store.policy(tx, policy_id)
        if found is None:
            raise NotFound("No such policy.")
        return found

    @http(
        "POST",
        "/policies",
        body=PolicyIn,
        response=PolicyOut(),
        status=201,
        roles=["admin"],
        rules=(
            "effective_to is not before effective_from",
            "criteria in one list (the policy's, a tier's, a group's) have different ids",
        ),
        summary="Publish a policy (admin); emits policy.published",
    )
    def publish_policy(self, request, body):
        policy = {**body, "id": seeded_policy_id(body["code"]), "version": 1}
        try:
            validate_policy(policy)
        except InvalidPolicy as exc:  # the shapes are the schema's: what is left is ids
            raise Unprocessable(
                "The policy's criteria cannot be evaluated.", fields=exc.errors
            ) from None
        with self.db.transaction() as tx:
            if not store.insert_policy(tx, policy):
                raise Conflict("A policy with this code exists already.")
            tx.publish("policy.published", _published(policy), subject=policy["id"])
            return store.policy(tx, policy["id"])

    # ------------------------------------------------------------------ eligibility

    @subscribe("accounts", "returnee.registered", "returnee.updated")
    def assess_returnee(self, event):
        data = event.data
        with self.db.transaction() as tx:
            facts = store.facts_of(data)
            if not store.save_facts(tx, data["returnee_id"], facts, event.time):
                return  # an older profile than the one assessed already
            assessing.assess_returnee(tx, data["returnee_id"], facts, self.clock())

    @subscribe("accounts", "returnee.erased")
    def erase_returnee(self, event):
        with self.db.transaction() as tx:
            store.erase_returnee(tx, event.data["returnee_id"])

    @subscribe("consulting", "policy.published")
    def reassess_for_policy(self, event):
        """Record the re-assessment of every returnee against the policy; the re-assessment
        loop does it, a batch per transaction."""
        with self.db.transaction() as tx:
            if store.policy(tx, event.data["policy_id"]) is None:
                raise LookupError(f"policy {event.data['policy_id']} is not in the catalog")
            store.queue_reassessment(tx, event.data["policy_id"])
        self.wake_reassessment()

    @loop(interval=REASSESS_SWEEP_SECONDS)
    def reassess_queued(self):
        """Work through the re-assessments under way, a batch of returnees per transaction, for
        up to a second per run (then the next run), so a stop waits for one batch only."""
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            with self.db.transaction() as tx:
                job = store.claim_reassessment(tx)
                if job is None:
                    return
                policy = store.policy(tx, job["policy_id"])
                after, _ = assessing.reassess_batch(tx, policy, self.clock(), job["after"])
                store.advance_reassessment(tx, job["policy_id"], after)
        self.wake_reassessment()

    @http(
        "GET",
        "/returnees/<returnee_id>/eligibility",
        query=EligibilityQuery,
        roles=["returnee", "advisor", "admin"],
        summary="Every policy with every criterion explained (self, advisor, admin)",
    )
    def eligibility(self, request, returnee_id, query):
        self.auth.caller(request).require_self_or("advisor", "admin", owner=returnee_id)
        _uuid_or_404(returnee_id, "No eligibility facts for this returnee yet.")
        as_of = query["as_of"] or self.clock().astimezone(SHANGHAI).date()
        with self.db.transaction() as tx:
            facts = store.facts(tx, returnee_id)
            policies = store.policies(tx)
        if facts is None:
            raise NotFound("No eligibility facts for this returnee yet.")
        derived = derive(facts, as_of)
        return [explain(assess(p, facts, as_of, derived), p, request.locale) for p in policies]

    # ------------------------------------------------------------------ advisors

    @subscribe("accounts", "staff.registered")
    def register_advisor(self, event):
        data = event.data
        if data["role"] != "advisor":
            return
        with self.db.transaction() as tx:
            store.save_advisor(tx, data["staff_id"], data["name"], active=True)

    # ------------------------------------------------------------------ consultations

    @http(
        "POST",
        "/consultations",
        body=ConsultationIn,
        status=201,
        roles=["returnee"],
        rules=("policy_id, when given, names a policy of the catalog",),
        summary="Ask a question (returnee); emits consultation.requested",
    )
    def request_consultation(self, request, body):
        caller = self.auth.caller(request)
        now = self.clock()
        ticket = tickets.open_consultation(str(uuid.uuid4()), caller.id, body["topic"], now)
        policy_id = str(body["policy_id"]) if body["policy_id"] else None
        with self.db.transaction() as tx:
            if policy_id and store.policy(tx, policy_id) is None:
                raise Unprocessable(fields={"policy_id": ["No such policy."]})
            store.insert_consultation(tx, ticket, body["question"], policy_id)
            tx.publish(
                "consultation.requested",
                {**_ticket_event(ticket), "policy_id": policy_id},
                subject=ticket.id,
            )
            advisor = tickets.next_advisor(store.advisors_for_round_robin(tx))
            if advisor is not None:
                ticket = self._assign(tx, ticket, advisor, now)
            return _consultation_out(store.consultation_row(tx, ticket.id), [])

    @http(
        "GET",
        "/consultations",
        query=ConsultationQuery,
        roles=["returnee", "advisor", "admin"],
        summary="Consultations: a returnee's own; advisors and admins see all",
    )
    def list_consultations(self, request, query):
        caller = self.auth.caller(request)
        returnee_id = query.get("returnee_id")
        if caller.role == "returnee":
            returnee_id = caller.id
        with self.db.transaction() as tx:
            rows = store.consultations(
                tx, returnee_id=returnee_id, status=query.get("status"), limit=query["limit"]
            )
        return [_consultation_out(r) for r in rows]

    @http(
        "GET",
        "/consultations/<consultation_id>",
        roles=["returnee", "advisor", "admin"],
        summary="A consultation with its message thread",
    )
    def get_consultation(self, request, consultation_id):
        caller = self.auth.caller(request)
        with self.db.transaction() as tx:
            row = self._visible_consultation(tx, caller, consultation_id)
            return _consultation_out(row, store.messages(tx, consultation_id))

    @http(
        "POST",
        "/consultations/<consultation_id>/messages",
        body=MessageIn,
        status=201,
        roles=["returnee", "advisor", "admin"],
        summary="Write in the thread (returnee owner, advisor, admin)",
    )
    def post_message(self, request, consultation_id, body):
        caller = self.auth.caller(request)
        now = self.clock()
        message_id = str(uuid.uuid4())
        with self.db.transaction() as tx:
            row = self._visible_consultation(tx, caller, consultation_id, lock=True)
            ticket = store.consultation_of(row)
            if caller.role == "admin" and ticket.advisor_id is None:
                raise Conflict("Assign the consultation to an advisor first.")
            try:
                if caller.role == "returnee":
                    ticket = tickets.returnee_message(ticket, now)
                else:
                    author = caller.id if caller.role == "advisor" else ticket.advisor_id
                    ticket = tickets.advisor_message(ticket, author, body["asks_returnee"], now)
            except tickets.TransitionRefused as exc:
                raise _refused(exc) from None
            store.insert_message(
                tx,
                message_id,
                ticket.id,
                caller.id,
                caller.role,
                body["body"],
                caller.role != "returnee" and body["asks_returnee"],
                now,
            )
            store.update_consultation(tx, ticket, now)
            self._publish_transition(tx, row["status"], ticket, message_id, caller.role)
            return _consultation_out(
                store.consultation_row(tx, ticket.id), store.messages(tx, ticket.id)
            )

    @http(
        "POST",
        "/consultations/<consultation_id>/assign",
        body=AssignIn,
        roles=["advisor", "admin"],
        rules=("advisor_id, when given, names an advisor of the station",),
        summary="Assign to an advisor, or round-robin when none is named (advisor, admin)",
    )
    def assign_consultation(self, request, consultation_id, body):
        caller = self.auth.caller(request)
        now = self.clock()
        with self.db.transaction() as tx:
            row = self._visible_consultation(tx, caller, consultation_id, lock=True)
            ticket = store.consultation_of(row)
            if body["advisor_id"] is not None:
                advisor = str(body["advisor_id"])
                if not store.advisor_exists(tx, advisor):
                    raise Unprocessable(fields={"advisor_id": ["No such advisor."]})
            else:
                advisor = tickets.next_advisor(store.advisors_for_round_robin(tx))
                if advisor is None:
                    raise Conflict("No advisor is available.")
            try:
                self._assign(tx, ticket, advisor, now)
            except tickets.TransitionRefused as exc:
                raise _refused(exc) from None
            return _consultation_out(store.consultation_row(tx, consultation_id))

    @http(
        "POST",
        "/consultations/<consultation_id>/close",
        roles=["returnee", "advisor", "admin"],
        summary="Close (returnee owner, advisor, admin); emits consultation.closed",
    )
    def close_consultation(self, request, consultation_id):
        return self._transition(request, consultation_id, "close")

    @http(
        "POST",
        "/consultations/<consultation_id>/reopen",
        roles=["returnee", "advisor", "admin"],
        summary="Reopen a closed consultation; emits consultation.reopened",
    )
    def reopen_consultation(self, request, consultation_id):
        return self._transition(request, consultation_id, "reopen")

    @http(
        "POST",
        "/consultations/<consultation_id>/rating",
        body=RatingIn,
        roles=["returnee"],
        summary="Rate a closed consultation 1–5 (returnee owner)",
    )
    def rate_consultation(self, request, consultation_id, body):
        caller = self.auth.caller(request)
        now = self.clock()
        with self.db.transaction() as tx:
            row = self._visible_consultation(tx, caller, consultation_id, lock=True)
            try:
                ticket = tickets.rate(store.consultation_of(row), body["rating"])
            except tickets.TransitionRefused:
                raise Conflict(
                    "The consultation can be rated only once, after it is closed."
                ) from None
            store.update_consultation(tx, ticket, now, rating_comment=body["comment"])
            tx.publish(
                "consultation.rated",
                {**_ticket_event(ticket), "rating": ticket.rating},
                subject=ticket.id,
            )
            return _consultation_out(store.consultation_row(tx, consultation_id))

    @timer(interval=SLA_CHECK_SECONDS)
    def check_sla(self):
        """Report missed deadlines. Safe with several replicas: overdue tickets are claimed with
        FOR UPDATE SKIP LOCKED and marked in the same transaction as the event."""
        now = self.clock()
        with self.db.transaction() as tx:
            for row in store.overdue_consultations(tx, now, SLA_CHECK_BATCH):
                ticket = store.consultation_of(row)
                for deadline, due_at in tickets.breaches(ticket, now):
                    ticket = tickets.mark_breached(ticket, deadline, now)
                    tx.publish(
                        "consultation.sla_breached",
                        {
                            "consultation_id": ticket.id,
                            "returnee_id": ticket.returnee_id,
                            "advisor_id": ticket.advisor_id,
                            "topic": ticket.topic,
                            "deadline": deadline,
                            "due_at": due_at,
                        },
                        subject=ticket.id,
                    )
                store.update_consultation(tx, ticket, now, escalated=True)

    # ------------------------------------------------------------------ appointments

    @http(
        "POST",
        "/slots",
        body=SlotIn,
        response=SlotOut(),
        status=201,
        roles=["advisor", "admin"],
        rules=("ends_at is after starts_at",),
        summary="Publish a station time slot with a capacity (advisor, admin)",
    )
    def publish_slot(self, request, body):
        caller = self.auth.caller(request)
        slot = {**body, "id": str(uuid.uuid4()), "advisor_id": caller.id}
        with self.db.transaction() as tx:
            store.insert_slot(tx, slot)
            return store.slot(tx, slot["id"])

    @http("GET", "/slots", response=SlotOut(many=True), auth=True, summary="Upcoming station slots")
    def list_slots(self, request):
        with self.db.transaction() as tx:
            return store.slots(tx, self.clock())

    @http(
        "POST",
        "/appointments",
        body=AppointmentIn,
        response=AppointmentOut(),
        status=201,
        roles=["returnee"],
        summary="Book a slot (returnee); emits appointment.booked",
    )
    def book_appointment(self, request, body):
        caller = self.auth.caller(request)
        appointment_id = str(uuid.uuid4())
        with self.db.transaction() as tx:
            if store.slot(tx, body["slot_id"]) is None:
                raise NotFound("No such slot.")
            seat = store.take_seat(tx, body["slot_id"], self.clock())
            if seat is None:
                raise Conflict("This slot is full or already past.")
            if not store.insert_appointment(
                tx, appointment_id, seat["id"], caller.id, body["topic"]
            ):
                raise Conflict("You have booked this slot already.")
            booked = store.appointment(tx, appointment_id)
            tx.publish("appointment.booked", _appointment_event(booked), subject=appointment_id)
            return booked

    @http(
        "GET",
        "/returnees/<returnee_id>/appointments",
        response=AppointmentOut(many=True),
        roles=["returnee", "advisor", "admin"],
        summary="A returnee's appointments (self, advisor, admin)",
    )
    def list_appointments(self, request, returnee_id):
        self.auth.caller(request).require_self_or("advisor", "admin", owner=returnee_id)
        _uuid_or_404(returnee_id, "No such appointment.")
        with self.db.transaction() as tx:
            return store.appointments_of(tx, returnee_id)

    @http(
        "POST",
        "/appointments/<appointment_id>/cancel",
        response=AppointmentOut(),
        roles=["returnee", "advisor", "admin"],
        summary="Cancel (returnee owner, advisor, admin); emits appointment.cancelled",
    )
    def cancel_appointment(self, request, appointment_id):
        caller = self.auth.caller(request)
        _uuid_or_404(appointment_id, "No such appointment.")
        with self.db.transaction() as tx:
            found = store.appointment(tx, appointment_id, lock=True)
            if found is None or not (
                caller.is_self(found["returnee_id"]) or caller.role in ("advisor", "admin")
            ):
                raise NotFound("No such appointment.")
            if found["status"] != "booked":
                raise Conflict("This appointment is cancelled already.")
            store.cancel_appointment(
                tx, appointment_id, found["slot_id"], caller.role, self.clock()
            )
            cancelled = store.appointment(tx, appointment_id)
            tx.publish(
                "appointment.cancelled",
                {**_appointment_event(cancelled), "cancelled_by": caller.role},
                subject=appointment_id,
            )
            return cancelled

    # ------------------------------------------------------------------ helpers

    def _visible_consultation(self, tx, caller, consultation_id, lock=False) -> dict:
        """The consultation if the caller may see it; 404 otherwise, so a returnee cannot probe
        other people's tickets."""
        _uuid_or_404(consultation_id, "No such consultation.")
        row = store.consultation_row(tx, consultation_id, lock=lock)
        if row is None or not (
            caller.role in ("advisor", "admin") or caller.is_self(row["returnee_id"])
        ):
            raise NotFound("No such consultation.")
        return row

    def _assign(self, tx, ticket, advisor_id, now):
        ticket = tickets.assign(ticket, advisor_id, now)
        store.update_consultation(tx, ticket, now)
        store.touch_advisor(tx, advisor_id, now)
        tx.publish("consultation.assigned", _ticket_event(ticket), subject=ticket.id)
        return ticket

    def _transition(self, request, consultation_id, action):
        caller = self.auth.caller(request)
        now = self.clock()
        with self.db.transaction() as tx:
            row = self._visible_consultation(tx, caller, consultation_id, lock=True)
            try:
                ticket = getattr(tickets, action)(store.consultation_of(row), now)
            except tickets.TransitionRefused as exc:
                raise _refused(exc) from None
            store.update_consultation(tx, ticket, now)
            key = "closed_by" if action == "close" else "reopened_by"
            tx.publish(
                f"consultation.{ticket.status}",
                {**_ticket_event(ticket), key: caller.role},
                subject=ticket.id,
            )
            return _consultation_out(store.consultation_row(tx, consultation_id))

    @staticmethod
    def _publish_transition(tx, before: str, ticket, message_id: str, role: str) -> None:
        """The event of a message's transition, if it made one."""
        if ticket.status == before and ticket.status != tickets.ANSWERED:
            return
        if ticket.status == tickets.ANSWERED and role != "returnee":
            tx.publish(
                "consultation.answered",
                {**_ticket_event(ticket), "message_id": message_id},
                subject=ticket.id,
            )
        elif ticket.status == tickets.WAITING and before != tickets.WAITING:
            tx.publish(
                "consultation.waiting_on_returnee",
                {**_ticket_event(ticket), "message_id": message_id},
                subject=ticket.id,
            )
        elif ticket.status == tickets.ASSIGNED and before != tickets.ASSIGNED:
            # The returnee replied: the ticket is back with its advisor, and its clock runs.
            tx.publish("consultation.assigned", _ticket_event(ticket), subject=ticket.id)


def _ticket_event(ticket) -> dict:
    return {
        "consultation_id": ticket.id,
        "returnee_id": ticket.returnee_id,
        "topic": ticket.topic,
        "status": ticket.status,
        "advisor_id": ticket.advisor_id,
    }


def _appointment_event(row: dict) -> dict:
    return {
        "appointment_id": str(row["id"]),
        "slot_id": str(row["slot_id"]),
        "returnee_id": str(row["returnee_id"]),
        "starts_at": row["starts_at"],
        "ends_at": row["ends_at"],
        "location": row["location"],
    }


def _published(policy: dict) -> dict:
    return {
        "policy_id": policy["id"],
        "code": policy["code"],
        "title": policy["title"],
        "effective_from": policy["effective_from"],
        "effective_to": policy.get("effective_to"),
    }


def _uuid_or_404(value: str, message: str, zh: str | None = None) -> None:
    try:
        uuid.UUID(value)
    except ValueError:
        raise NotFound(message, zh=zh) from None
