"""The baseline of `bench/platform.py`: a bare nameko `@http` endpoint for `POST /returnees`.

Plain `nameko.web.handlers.http`, none of the chassis' schemas, auth, database or outbox: it
parses the JSON body and answers 201 with it (without the password) and a new id, about the
size of accounts' answer. Run as its own process, as accounts is:

    BARE_HTTP_PORT=9001 python -m chassis.run bare bench.platform_bare:BareService
"""

import json
import uuid

from nameko.web.handlers import http
from werkzeug.wrappers import Response


class BareService:
    name = "bare"

    @http("POST", "/returnees")
    def register(self, request):
        body = json.loads(request.get_data(as_text=True))
        body.pop("password", None)
        answer = {"id": str(uuid.uuid4()), **body}
        return Response(json.dumps(answer), status=201, mimetype="application/json")
