"""Recording what a peer sends and receives, as it crossed the wire (for the report and `make record`)."""

from __future__ import annotations

import requests

from ..model import Exchange

__all__ = ["RecordingSession"]


class RecordingSession(requests.Session):
    """A requests session that keeps every POST as it crossed the wire: msal's ``http_client``, zeep's session.

    A response hook sees the prepared request, so the bytes kept are the ones sent, after the library's own
    serialisation; GETs (zeep loading the WSDL) are not exchanges of the protocol and are left out.
    """

    def __init__(self) -> None:
        super().__init__()
        self.exchanges: list[Exchange] = []
        self.hooks["response"].append(self._record)

    def _record(self, response: requests.Response, *args: object, **kwargs: object) -> requests.Response:
        if response.request.method != "POST":
            return response
        body = response.request.body
        # msal posts a str; requests sends it as is (ASCII here), so encoding it again gives the wire bytes.
        request = body.encode("utf-8") if isinstance(body, str) else body if isinstance(body, bytes) else b""
        self.exchanges.append(Exchange(url=str(response.request.url), request=request,
                                       response=response.content, status=response.status_code))
        return response
