"""The admins' imports: a spreadsheet uploaded on `/admin/imports` is read here (the rows and
headers as `station import` reads them, `chassis.sheets`) and sent in batches to the batch
endpoint of the service that owns its rows, by a green thread of this portal process, while
the page shows its progress and then the invalid rows, downloadable as the same errors file
station writes.

An import lives in the process that took the upload, for `KEPT` imports at most: the portal
has no database, and what matters is in the services (each batch committed there). A restart
ends an import between two batches; uploading the file again finishes it (the rows imported
already are answered `exists`, nothing is created twice).
"""

import logging
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field

from nameko.extensions import DependencyProvider

from chassis.sheets import KINDS, Layout, batches, error_lines, read_table
from services.portal.session import Session
from services.portal.upstream import ApiError, Platform, ServiceDown, SignedOut

log = logging.getLogger(__name__)

KEPT = 20  # imports remembered per process, the oldest forgotten first
MAX_UPLOAD_BYTES = 8 * 1024 * 1024  # about 10,000 returnee rows as XLSX


# The English texts of this module (the page translates them with messages.py).
TEXTS = (
    "This file cannot be read: upload a .csv (UTF-8 or GB18030) or .xlsx file.",
    "Unknown columns: {columns}. The template lists the columns.",
    "The file has no rows under its header.",
    "Your sign-in ran out during the import.",
    "{service} does not answer.",
    "The service refused the import.",
    "The import stopped on an unexpected error.",
)


class UnreadableFile(Exception):
    """The file is no .csv or .xlsx, cannot be decoded, or has columns the service does not
    take: nothing was sent. `args[0]` is an English interface text, `params` fill it."""

    def __init__(self, message: str, **params):
        super().__init__(message)
        self.params = params


@dataclass
class ImportJob:
    id: str
    owner: str  # the admin's account id: the import is theirs to watch
    kind: str
    file_name: str
    total: int
    done: int = 0
    created: int = 0
    existing: int = 0
    invalid: int = 0
    state: str = "running"  # running, done, failed
    failure: str | None = None  # an English interface text when it failed
    failure_params: dict = field(default_factory=dict)
    detail: str | None = None  # what the service said, in the uploader's language
    errors: list = field(default_factory=list)  # lines of the errors file
    started_at: float = field(default_factory=time.time)

    @property
    def percent(self) -> int:
        return 100 if not self.total else round(100 * self.done / self.total)


def prepared(api: Platform, kind: str, file_name: str, data: bytes) -> tuple[Layout, list]:
    """The file's layout over the kind's row schema and its batches, or UnreadableFile."""
    try:
        headers, rows = read_table(file_name, data)
    except ValueError:
        raise UnreadableFile(
            "This file cannot be read: upload a .csv (UTF-8 or GB18030) or .xlsx file."
        ) from None
    document = api.get(KINDS[kind][0], "/openapi.json", auth=False)
    layout = Layout(document, kind, headers)
    if layout.unknown:
        raise UnreadableFile(
            "Unknown columns: {columns}. The template lists the columns.",
            columns=", ".join(layout.unknown),
        )
    if rows and layout.is_header_row(rows[0][1]):
        rows = rows[1:]  # the template's second header row
    if not rows:
        raise UnreadableFile("The file has no rows under its header.")
    return layout, rows


class ImportJobs(DependencyProvider):
    """The imports of this portal process; each runs in a managed green thread."""

    def setup(self):
        self.jobs: OrderedDict[str, ImportJob] = OrderedDict()

    def get_dependency(self, worker_ctx):
        return self

    def begin(self, api: Platform, kind: str, file_name: str, layout: Layout, rows) -> ImportJob:
        job = ImportJob(str(uuid.uuid4()), api.session.person_id, kind, file_name, len(rows))
        self.jobs[job.id] = job
        while len(self.jobs) > KEPT:
            self.jobs.popitem(last=False)
        # The job calls with the admin's access token as it is now, and never refreshes it: a
        # refresh would rotate the tokens of the browser's session behind its back.
        token = Session(access=api.session["access"], expires=api.session.get("expires", 0))
        caller = Platform(api.services, token, api.locale, api.correlation_id)
        self.container.spawn_managed_thread(lambda: run(job, caller, layout, rows))
        return job

    def of(self, owner: str) -> list[ImportJob]:
        return [job for job in reversed(self.jobs.values()) if job.owner == owner]

    def find(self, job_id: str, owner: str) -> ImportJob | None:
        job = self.jobs.get(job_id)
        return job if job is not None and job.owner == owner else None


def run(job: ImportJob, api: Platform, layout: Layout, rows) -> None:
    """Batch after batch, the counts and the invalid rows kept as each batch is answered."""
    service, path, _ = KINDS[job.kind]
    try:
        for batch in batches(rows, layout):
            outcome = api.post(service, path, json={"rows": [row for _, row in batch]})
            job.created += outcome["created"]
            job.existing += outcome["existing"]
            job.invalid += outcome["invalid"]
            job.errors.extend(error_lines(batch, outcome, layout))
            job.done += len(batch)
        job.state = "done"
    except SignedOut:
        job.failure = "Your sign-in ran out during the import."
    except ServiceDown as exc:
        job.failure, job.failure_params = "{service} does not answer.", {"service": exc.service}
    except ApiError as exc:
        job.failure, job.detail = "The service refused the import.", exc.message
    except Exception:  # the page says it stopped; the log has why
        log.exception("import %s failed", job.id)
        job.failure = "The import stopped on an unexpected error."
    if job.failure:
        job.state = "failed"
