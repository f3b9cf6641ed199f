"""portal: the platform in a browser, for returnees and, one home per role, the station's
advisors (/console), providers (/partner), admins (/admin) and the district's officials
(/district).

A backend for the front end: server-rendered pages that call the services' own HTTP APIs with
the signed-in person's token. No database, no broker: the session lives in an encrypted cookie
(`session.py`). Each entrypoint is one page (or one form's action) and calls one function of
`account`, `public`, `me`, `console`, `partner`, `admin` or `district`; `web.py` holds what
every page shares (language, session, CSRF, security headers, error pages, refusal by role).
"""

from werkzeug.wrappers import Response

from chassis.logs import LogContext
from services.portal import account, admin, console, district, me, partner, public
from services.portal.imports import ImportJobs
from services.portal.upstream import Services
from services.portal.web import page


class PortalService:
    name = "portal"
    services = Services()
    imports = ImportJobs()
    log_context = LogContext()

    # ------------------------------------------------------------------ public

    @page("GET", "/")
    def home(self, request):
        return public.home(request, self.services.acting_for(request))

    @page("GET", "/policies")
    def policies(self, request):
        return public.policies(request, self.services.acting_for(request))

    @page("GET", "/policies/<policy_id>")
    def policy(self, request, policy_id):
        return public.policy(request, self.services.acting_for(request), policy_id)

    @page("GET", "/activities")
    def activities(self, request):
        return public.activities(request, self.services.acting_for(request))

    @page("GET", "/activities/<activity_id>")
    def activity(self, request, activity_id):
        return public.activity(request, self.services.acting_for(request), activity_id)

    # ------------------------------------------------------------------ the account

    @page("GET,POST", "/register")
    def register(self, request):
        return account.register(request, self.services.acting_for(request))

    @page("GET", "/register/done")
    def registered(self, request):
        return account.registered(request, self.services.acting_for(request))

    @page("GET,POST", "/login")
    def sign_in(self, request):
        return account.sign_in(request, self.services.acting_for(request))

    @page("POST", "/logout")
    def sign_out(self, request):
        return account.sign_out(request, self.services.acting_for(request))

    @page("GET,POST", "/verify-email")
    def verify_email(self, request):
        return account.verify_email(request, self.services.acting_for(request))

    @page("GET,POST", "/reset-password")
    def reset_password(self, request):
        return account.reset_password(request, self.services.acting_for(request))

    @page("GET,POST", "/set-password")
    def set_password(self, request):
        return account.set_password(request, self.services.acting_for(request))

    @page("GET", "/staff", signed_in=True, role=None)
    def staff(self, request):
        return account.staff(request, self.services.acting_for(request))

    # ------------------------------------------------------------------ signed in: /me

    @page("GET", "/me", signed_in=True)
    def overview(self, request):
        return me.overview(request, self.services.acting_for(request))

    @page("GET", "/me/matches", signed_in=True)
    def matches(self, request):
        return me.matches(request, self.services.acting_for(request))

    @page("POST", "/me/matches/<match_id>/feedback", signed_in=True)
    def match_feedback(self, request, match_id):
        return me.match_feedback(request, self.services.acting_for(request), match_id)

    @page("GET", "/me/intentions", signed_in=True)
    def intentions(self, request):
        return me.intentions(request, self.services.acting_for(request))

    @page("POST", "/me/intentions", signed_in=True)
    def express_intention(self, request):
        return me.express_intention(request, self.services.acting_for(request))

    @page("GET,POST", "/me/consultations", signed_in=True)
    def consultations(self, request):
        return me.consultations(request, self.services.acting_for(request))

    @page("GET", "/me/consultations/<consultation_id>", signed_in=True)
    def consultation(self, request, consultation_id):
        return me.consultation(request, self.services.acting_for(request), consultation_id)

    @page("POST", "/me/consultations/<consultation_id>", signed_in=True)
    def consultation_action(self, request, consultation_id):
        return me.consultation_action(request, self.services.acting_for(request), consultation_id)

    @page("GET", "/me/appointments", signed_in=True)
    def appointments(self, request):
        return me.appointments(request, self.services.acting_for(request))

    @page("POST", "/me/appointments", signed_in=True)
    def book_appointment(self, request):
        return me.book_appointment(request, self.services.acting_for(request))

    @page("POST", "/me/appointments/<appointment_id>/cancel", signed_in=True)
    def cancel_appointment(self, request, appointment_id):
        return me.cancel_appointment(request, self.services.acting_for(request), appointment_id)

    @page("GET", "/me/activities", signed_in=True)
    def my_activities(self, request):
        return me.my_activities(request, self.services.acting_for(request))

    @page("POST", "/activities/<activity_id>/sign-up", signed_in=True)
    def sign_up(self, request, activity_id):
        return me.sign_up(request, self.services.acting_for(request), activity_id)

    @page("POST", "/me/activities/<activity_id>/cancel", signed_in=True)
    def cancel_registration(self, request, activity_id):
        return me.cancel_registration(request, self.services.acting_for(request), activity_id)

    @page("GET", "/me/activities/<activity_id>/<registration_id>/qr.png", signed_in=True)
    def check_in_code(self, request, activity_id, registration_id):
        return me.check_in_code(
            request, self.services.acting_for(request), activity_id, registration_id
        )

    @page("GET", "/me/notifications", signed_in=True)
    def notifications(self, request):
        return me.notifications(request, self.services.acting_for(request))

    @page("GET,POST", "/me/preferences", signed_in=True)
    def preferences(self, request):
        return me.preferences(request, self.services.acting_for(request))

    @page("GET,POST", "/me/profile", signed_in=True)
    def profile(self, request):
        return me.profile(request, self.services.acting_for(request))

    @page("POST", "/me/consents", signed_in=True)
    def consents(self, request):
        return me.consents(request, self.services.acting_for(request))

    @page("GET", "/me/data", signed_in=True)
    def my_data(self, request):
        return me.my_data(request, self.services.acting_for(request))

    @page("GET", "/me/data.<any(json, xlsx):kind>", signed_in=True)
    def download(self, request, kind):
        return me.download(request, self.services.acting_for(request), kind)

    @page("GET,POST", "/me/delete", signed_in=True)
    def delete_account(self, request):
        return me.delete_account(request, self.services.acting_for(request))

    # ------------------------------------------------------------------ advisors: /console

    @page("GET", "/console", signed_in=True, role="advisor")
    def queue(self, request):
        return console.queue(request, self.services.acting_for(request))

    @page("GET", "/console/consultations/<consultation_id>", signed_in=True, role="advisor")
    def console_consultation(self, request, consultation_id):
        return console.consultation(request, self.services.acting_for(request), consultation_id)

    @page("POST", "/console/consultations/<consultation_id>", signed_in=True, role="advisor")
    def console_consultation_action(self, request, consultation_id):
        return console.consultation_action(
            request, self.services.acting_for(request), consultation_id
        )

    @page("GET", "/console/returnees", signed_in=True, role="advisor")
    def console_find_returnee(self, request):
        return console.find_returnee(request, self.services.acting_for(request))

    @page("GET", "/console/returnees/<returnee_id>", signed_in=True, role="advisor")
    def console_returnee(self, request, returnee_id):
        return console.returnee(request, self.services.acting_for(request), returnee_id)

    @page("GET", "/console/appointments", signed_in=True, role="advisor")
    def console_appointments(self, request):
        return console.appointments(request, self.services.acting_for(request))

    @page("POST", "/console/appointments", signed_in=True, role="advisor")
    def console_publish_slot(self, request):
        return console.publish_slot(request, self.services.acting_for(request))

    @page("GET", "/console/activities", signed_in=True, role="advisor")
    def console_activities(self, request):
        return console.activities(request, self.services.acting_for(request))

    @page("GET,POST", "/console/activities/new", signed_in=True, role="advisor")
    def console_new_activity(self, request):
        return console.new_activity(request, self.services.acting_for(request))

    @page("GET", "/console/activities/<activity_id>", signed_in=True, role="advisor")
    def console_activity(self, request, activity_id):
        return console.activity(request, self.services.acting_for(request), activity_id)

    @page("GET,POST", "/console/activities/<activity_id>/check-in", signed_in=True, role="advisor")
    def console_check_in(self, request, activity_id):
        return console.check_in(request, self.services.acting_for(request), activity_id)

    @page("POST", "/console/activities/<activity_id>/agreements", signed_in=True, role="advisor")
    def console_agreement(self, request, activity_id):
        return console.record_agreement(request, self.services.acting_for(request), activity_id)

    @page("POST", "/console/activities/<activity_id>/intentions", signed_in=True, role="advisor")
    def console_intention(self, request, activity_id):
        return console.record_intention(request, self.services.acting_for(request), activity_id)

    @page("POST", "/console/activities/<activity_id>/close", signed_in=True, role="advisor")
    def console_close_activity(self, request, activity_id):
        return console.close_activity(request, self.services.acting_for(request), activity_id)

    # ------------------------------------------------------------------ providers: /partner

    @page("GET", "/partner", signed_in=True, role="provider")
    def partner_resources(self, request):
        return partner.resources(request, self.services.acting_for(request))

    @page("POST", "/partner/resources", signed_in=True, role="provider")
    def partner_publish(self, request):
        return partner.publish_resource(request, self.services.acting_for(request))

    @page("GET", "/partner/resources/<resource_id>", signed_in=True, role="provider")
    def partner_resource(self, request, resource_id):
        return partner.resource(request, self.services.acting_for(request), resource_id)

    @page("POST", "/partner/resources/<resource_id>", signed_in=True, role="provider")
    def partner_change(self, request, resource_id):
        return partner.change_resource(request, self.services.acting_for(request), resource_id)

    @page("POST", "/partner/resources/<resource_id>/withdraw", signed_in=True, role="provider")
    def partner_withdraw(self, request, resource_id):
        return partner.withdraw_resource(request, self.services.acting_for(request), resource_id)

    @page("GET", "/partner/intentions", signed_in=True, role="provider")
    def partner_intentions(self, request):
        return partner.intentions(request, self.services.acting_for(request))

    @page("POST", "/partner/intentions/<intention_id>", signed_in=True, role="provider")
    def partner_decide(self, request, intention_id):
        return partner.decide(request, self.services.acting_for(request), intention_id)

    @page("GET", "/partner/figures", signed_in=True, role="provider")
    def partner_figures(self, request):
        return partner.figures(request, self.services.acting_for(request))

    # ------------------------------------------------------------------ admins: /admin

    @page("GET", "/admin", signed_in=True, role="admin")
    def admin_home(self, request):
        return admin.home(request, self.services.acting_for(request))

    @page("GET,POST", "/admin/organizations", signed_in=True, role="admin")
    def admin_organizations(self, request):
        return admin.organizations(request, self.services.acting_for(request))

    @page("GET", "/admin/staff", signed_in=True, role="admin")
    def admin_staff(self, request):
        return admin.staff(request, self.services.acting_for(request))

    @page("POST", "/admin/staff", signed_in=True, role="admin")
    def admin_invite(self, request):
        return admin.invite(request, self.services.acting_for(request))

    @page("POST", "/admin/staff/state", signed_in=True, role="admin")
    def admin_account_state(self, request):
        return admin.account_state(request, self.services.acting_for(request))

    @page("GET", "/admin/policies", signed_in=True, role="admin")
    def admin_policies(self, request):
        return admin.policies(request, self.services.acting_for(request))

    @page("GET", "/admin/policies/<policy_id>", signed_in=True, role="admin")
    def admin_policy(self, request, policy_id):
        return admin.policy(request, self.services.acting_for(request), policy_id)

    @page("POST", "/admin/policies/<policy_id>", signed_in=True, role="admin")
    def admin_publish_version(self, request, policy_id):
        return admin.publish_version(request, self.services.acting_for(request), policy_id)

    @page("GET", "/admin/imports", signed_in=True, role="admin")
    def admin_imports(self, request):
        return admin.imports_page(request, self.services.acting_for(request), self.imports)

    @page("POST", "/admin/imports", signed_in=True, role="admin")
    def admin_start_import(self, request):
        return admin.start_import(request, self.services.acting_for(request), self.imports)

    @page("GET", "/admin/imports/<job_id>", signed_in=True, role="admin")
    def admin_import(self, request, job_id):
        return admin.import_job(request, self.services.acting_for(request), self.imports, job_id)

    @page("GET", "/admin/imports/<job_id>/progress", signed_in=True, role="admin")
    def admin_import_progress(self, request, job_id):
        return admin.import_job(
            request, self.services.acting_for(request), self.imports, job_id, fragment=True
        )

    @page("GET", "/admin/imports/<job_id>/errors.csv", signed_in=True, role="admin")
    def admin_import_errors(self, request, job_id):
        return admin.import_errors(request, self.services.acting_for(request), self.imports, job_id)

    @page("GET", "/admin/imports/template-<any(returnees, organizations, resources):kind>.xlsx",
          signed_in=True, role="admin")  # fmt: skip
    def admin_import_template(self, request, kind):
        return admin.import_template(request, self.services.acting_for(request), kind)

    @page("GET", "/admin/canned-replies", signed_in=True, role="admin")
    def admin_canned_replies(self, request):
        return admin.canned_replies(request, self.services.acting_for(request))

    @page("POST", "/admin/canned-replies", signed_in=True, role="admin")
    def admin_create_canned_reply(self, request):
        return admin.create_canned_reply(request, self.services.acting_for(request))

    @page("GET,POST", "/admin/canned-replies/<reply_id>", signed_in=True, role="admin")
    def admin_canned_reply(self, request, reply_id):
        return admin.canned_reply(request, self.services.acting_for(request), reply_id)

    @page("GET", "/admin/dead-letters", signed_in=True, role="admin")
    def admin_dead_letters(self, request):
        return admin.dead_letters(request, self.services.acting_for(request))

    @page("GET,POST", "/admin/dead-letters/<service>/<event_id>", signed_in=True, role="admin")
    def admin_dead_letter(self, request, service, event_id):
        return admin.dead_letter(request, self.services.acting_for(request), service, event_id)

    # ------------------------------------------------------------------ officials: /district

    @page("GET", "/district", signed_in=True, role=("official", "admin"))
    def district_dashboard(self, request):
        return district.dashboard(request, self.services.acting_for(request))

    @page("GET", "/district/export.xlsx", signed_in=True, role=("official", "admin"))
    def district_export(self, request):
        return district.export(request, self.services.acting_for(request))

    # ------------------------------------------------------------------ for probes

    @page("GET", "/health/live")
    def health_live(self, request):
        return Response('{"status": "live", "service": "portal"}', content_type="application/json")

    @page("GET", "/health/ready")
    def health_ready(self, request):
        # Ready while it serves: a service that is down is said on the pages that need it,
        # which only a portal left in rotation can do.
        return Response('{"status": "ready"}', content_type="application/json")
