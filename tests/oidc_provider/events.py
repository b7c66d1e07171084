"""An append-only log of the requests the provider served, for the tests to read."""

from __future__ import annotations

import json

from django.conf import settings


class RecordMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        with open(settings.DATA / "events.jsonl", "a") as fh:
            fh.write(
                json.dumps(
                    {
                        "method": request.method,
                        "path": request.path,
                        "query": sorted(request.GET.keys()),
                        "status": response.status_code,
                        "user": request.user.username if request.user.is_authenticated else "",
                    }
                )
                + "\n"
            )
        return response
