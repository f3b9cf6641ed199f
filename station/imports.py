"""`station import KIND FILE`: the file's rows sent in batches to the owning service, which
validates each row by the rules of its single-row operation and answers per row. Invalid rows
are shown and written to `FILE.errors.csv`; the rest are imported. Progress is kept in
`FILE.progress.json` after each batch, so an interrupted import resumes after the last batch
answered (a batch sent again is answered `exists` row by row: nothing is created twice)."""

import csv
import hashlib
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm import tqdm

from chassis.sheets import (
    ERROR_COLUMNS,
    KINDS,
    Layout,
    batches,
    error_lines,
    read_rows,
    write_template,
)
from station.client import Session, StationError, answer, service_url

IN_FLIGHT = 2  # batches sent before the first is answered: the service works while we read


def openapi(kind: str) -> dict:
    import requests

    service = KINDS[kind][0]
    try:
        return requests.get(service_url(service) + "/openapi.json", timeout=30).json()
    except requests.ConnectionError as error:
        raise StationError(
            f"{service} does not answer at {service_url(service)}: {error}"
        ) from None


def template(kind: str, path: Path) -> None:
    write_template(openapi(kind), kind, path)
    print(f"wrote {path}: the English and Chinese header rows; allowed values and an example "
          "row on the other sheets")  # fmt: skip


def run(session: Session, kind: str, path: Path, quiet: bool = False,
        in_flight: int = IN_FLIGHT) -> int:  # fmt: skip
    """0 when every row is imported or was already, 3 when some are invalid (see the errors
    file), 2 when the file cannot be read as the kind's rows."""
    service, batch_path, _ = KINDS[kind]
    try:
        headers, rows = read_rows(path)
    except (ValueError, OSError) as error:
        print(f"station: {error}", file=sys.stderr)
        return 2
    layout = Layout(openapi(kind), kind, headers)
    if layout.unknown:
        print(f"station: {path.name}: unknown columns: {', '.join(layout.unknown)} "
              f"(`station import --template {kind} FILE.xlsx` lists the columns)",
              file=sys.stderr)  # fmt: skip
        return 2
    if rows and layout.is_header_row(rows[0][1]):
        rows = rows[1:]  # the template's second header row
    progress_path = path.with_name(path.name + ".progress.json")
    errors_path = path.with_name(path.name + ".errors.csv")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    progress = _resumed(progress_path, digest, kind)
    done = progress["done"]
    if done and not quiet:
        print(f"resuming {path.name} after row {rows[done - 1][0]} ({done} rows done)")
    errors_file = errors_path.open("a" if done else "w", newline="", encoding="utf-8-sig")
    errors = csv.writer(errors_file)
    if not done:
        errors.writerow(ERROR_COLUMNS)
    to_send = list(batches(rows[done:], layout))
    bar = tqdm(total=len(rows), initial=done, unit="row", desc=kind, disable=quiet,
               dynamic_ncols=True)  # fmt: skip

    def send(batch):
        body = json.dumps({"rows": [r for _, r in batch]}, ensure_ascii=False).encode()
        response = session.call("POST", service, batch_path, data=body,
                                headers={"Content-Type": "application/json"})  # fmt: skip
        return answer(response)

    try:
        with ThreadPoolExecutor(in_flight) as pool:
            pending = [pool.submit(send, b) for b in to_send[:in_flight]]
            for index, batch in enumerate(to_send):
                outcome = pending.pop(0).result()
                if index + in_flight < len(to_send):
                    pending.append(pool.submit(send, to_send[index + in_flight]))
                for key in ("created", "existing", "invalid"):
                    progress[key] += outcome[key]
                for line in error_lines(batch, outcome, layout):
                    errors.writerow(line)
                    if not quiet:
                        bar.write(f"row {line[0]} {line[1]}: {line[3]} / {line[4]}")
                errors_file.flush()
                progress["done"] += len(batch)
                _save(progress_path, progress)
                bar.update(len(batch))
    finally:
        bar.close()
        errors_file.close()
    progress_path.unlink()
    summary = (f"{kind}: {progress['created']} created, {progress['existing']} already there, "
               f"{progress['invalid']} invalid")  # fmt: skip
    if progress["invalid"]:
        summary += f" (row, column and message in {errors_path})"
    else:
        errors_path.unlink()
    print(summary)
    return 3 if progress["invalid"] else 0


def _resumed(path: Path, digest: str, kind: str) -> dict:
    fresh = {"file_sha256": digest, "kind": kind, "done": 0, "created": 0, "existing": 0,
             "invalid": 0}  # fmt: skip
    if not path.exists():
        return fresh
    kept = json.loads(path.read_text())
    if kept.get("file_sha256") != digest or kept.get("kind") != kind:
        return fresh  # another file, or the file changed: start again (nothing doubles)
    return kept


def _save(path: Path, progress: dict) -> None:
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(json.dumps(progress))
    os.replace(partial, path)
