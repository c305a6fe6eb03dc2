"""The relying parties: list, add (certificate or metadata), edit the policy, roll over the certificate, remove.

A thin adapter over ``sts.admin.relying_parties``: read the form, call the operation as the signed-in
administrator, show the result (with the core's warnings) or its errors next to their fields, input kept. The
"allow legacy algorithms" checkbox is the console's explicit opt-in to a legacy algorithm.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from sts.admin import relying_parties as core
from sts.admin.base import AdminError, ConfirmationRequired, NotFound, field_errors
from sts.admin.certificates import MAX_CERTIFICATE_BYTES
from sts.admin.rp_metadata import MAX_METADATA_BYTES
from sts.model import RelyingParty
from sts.claim_dictionary import KNOWN_CLAIMS
from sts.web.console import forms
from sts.web.console.core import ConsoleCore, _form_values, _now, _text

_LEGACY_HINT = "tick 'allow legacy algorithms' to choose it"


class RelyingPartyPages(ConsoleCore):
    """The relying parties: list, add (certificate or metadata), edit the policy, remove."""

    # -- plumbing ----------------------------------------------------------------------------------------

    def _rp_rows(self) -> list[dict[str, Any]]:
        now = _now()
        return [{"rp": rp, "cert": forms.cert_info(rp.cert_pem, now),
                 "next_cert": forms.cert_info(rp.next_cert_pem, now)}
                for rp in core.list_relying_parties(self.admin_context())]

    def _rp_page(self, request: Request, form: forms.RpForm, status: int = 200, **extra: Any) -> Response:
        return self.render(request, "rp_form.html", status, values=form.values, errors=form.errors,
                           known_claims=KNOWN_CLAIMS, supports=forms.rp_supports, metadata_import=True, **extra)

    def _done(self, request: Request, verb: str, change: core.RelyingPartyChange) -> Response:
        """After a change: back to the list, or the list with the warnings the administrator must read."""
        endpoint = change.relying_party.endpoint
        if change.warnings:
            return self.render(request, "rps.html", rows=self._rp_rows(), warnings=change.warnings,
                               done=(verb, endpoint))
        return RedirectResponse(f"{request.scope.get('root_path', '')}/rps?{verb}={quote(endpoint)}", 303)

    @staticmethod
    def _show_errors(form: forms.RpForm, error: AdminError) -> None:
        for field, message in field_errors(error).items():
            form.errors.setdefault(field, f"{message}: {_LEGACY_HINT}" if isinstance(error, ConfirmationRequired)
                                   else message)

    # -- pages -------------------------------------------------------------------------------------------

    async def rps(self, request: Request) -> Response:
        return self.render(request, "rps.html", rows=await run_in_threadpool(self._rp_rows))

    async def rp_new(self, request: Request) -> Response:
        defaults = {"token_type": "saml20", "encrypt": True, "signature": "rsa-sha256",
                    "data_encryption": "aes256-gcm", "key_transport": "rsa-oaep-mgf1p"}
        if request.method == "GET":
            return self._rp_page(request, forms.RpForm(defaults), mode="add")
        raw = await self.form(request)
        assert raw is not None
        form = forms.RpForm(_form_values(raw))
        policy = forms.rp_policy(form)
        from_metadata = raw.get("source") == "metadata"
        source = await _metadata_source(raw, form) if from_metadata else None
        certificate = None if from_metadata else await _upload(raw, form, "cert")
        if form.errors:
            return self._rp_page(request, form, 400, mode="add")
        ctx, actor, legacy = self.admin_context(), self.admin_actor(request), form.flag("legacy")
        try:
            if source is not None:
                change = await run_in_threadpool(lambda: core.add_relying_party_from_metadata(
                    ctx, actor, source, policy=policy, allow_legacy=legacy))
            else:
                change = await run_in_threadpool(lambda: core.add_relying_party(
                    ctx, actor, form.text("endpoint"), certificate=certificate, policy=policy, allow_legacy=legacy))
        except AdminError as err:
            self._show_errors(form, err)
            return self._rp_page(request, form, 400, mode="add")
        return self._done(request, "added", change)

    async def _existing_rp(self, request: Request) -> RelyingParty | Response:
        """The relying party named by ``?endpoint=``, or the 404 page to answer with."""
        endpoint = request.query_params.get("endpoint", "")
        try:
            return await run_in_threadpool(core.get_relying_party, self.admin_context(), endpoint)
        except NotFound as err:
            return self.render(request, "message.html", 404, title="Not found", message=f"{err.message}.")

    async def rp_edit(self, request: Request) -> Response:
        existing = await self._existing_rp(request)
        if isinstance(existing, Response):
            return existing
        now = _now()
        info: dict[str, Any] = {"rp": existing, "cert": forms.cert_info(existing.cert_pem, now),
                                "next_cert": forms.cert_info(existing.next_cert_pem, now)}
        if request.method == "GET":
            return self._rp_page(request, forms.RpForm(forms.rp_form_values(existing)), mode="edit", **info)
        raw = await self.form(request)
        assert raw is not None
        form = forms.RpForm(_form_values(raw))
        form.values["endpoint"] = existing.endpoint
        policy = forms.rp_policy(form)
        certificate = await _upload(raw, form, "cert")
        rollover = await _rollover(raw, form, existing)
        if form.errors:
            return self._rp_page(request, form, 400, mode="edit", **info)
        ctx, actor = self.admin_context(), self.admin_actor(request)
        try:
            change = await run_in_threadpool(lambda: core.update_relying_party(
                ctx, actor, existing.endpoint, policy, certificate=certificate, rollover=rollover,
                allow_legacy=form.flag("legacy")))
        except AdminError as err:
            self._show_errors(form, err)
            return self._rp_page(request, form, 400, mode="edit", **info)
        return self._done(request, "updated", change)

    async def rp_remove(self, request: Request) -> Response:
        existing = await self._existing_rp(request)
        if isinstance(existing, Response):
            return existing
        if request.method == "GET":
            return self.render(request, "confirm.html", title="Remove relying party",
                               question=f"Remove the relying party {existing.endpoint}? "
                                        "The next token request for it is refused.",
                               action=f"rps/remove?endpoint={quote(existing.endpoint, safe='')}",
                               back="rps")
        try:
            await run_in_threadpool(core.remove_relying_party, self.admin_context(), self.admin_actor(request),
                                    existing.endpoint)
        except NotFound as err:  # removed meanwhile
            return self.render(request, "message.html", 404, title="Not found", message=f"{err.message}.")
        return RedirectResponse(f"{request.scope.get('root_path', '')}/rps?removed={quote(existing.endpoint)}", 303)


async def _upload(raw: FormData, form: forms.RpForm, prefix: str) -> bytes | None:
    """The certificate from ``<prefix>_file`` or the pasted ``<prefix>_pem``; None when neither is given.
    Reading is bounded; what the bytes are is for the admin core to say."""
    upload = raw.get(f"{prefix}_file")
    if isinstance(upload, UploadFile) and upload.filename:
        return await upload.read(MAX_CERTIFICATE_BYTES + 1)
    pasted = _text(raw.get(f"{prefix}_pem")).strip()
    return pasted.encode("utf-8", "replace") if pasted else None


async def _metadata_source(raw: FormData, form: forms.RpForm) -> str | bytes | None:
    """The uploaded metadata document, or its URL; one error for the field when neither is given."""
    upload, url = raw.get("metadata_file"), form.text("metadata_url")
    if isinstance(upload, UploadFile) and upload.filename:
        return await upload.read(MAX_METADATA_BYTES + 1)
    if url:
        return url
    form.errors["metadata"] = "choose a metadata file or give its URL"
    return None


async def _rollover(raw: FormData, form: forms.RpForm, existing: RelyingParty) -> core.Rollover | None:
    """The rollover the edit form asks for: a next certificate and its time, a new time, or dropping it.
    The form shows the scheduled time to the minute; sent back unchanged, it asks for nothing."""
    if form.flag("clear_next_cert"):
        return core.Rollover(cancel=True) if existing.next_cert_pem else None
    next_cert = await _upload(raw, form, "next_cert")
    switch_at = form.time("next_cert_from")
    shown = existing.next_cert_from.replace(second=0, microsecond=0) if existing.next_cert_from else None
    if next_cert is None and (switch_at is None or switch_at == shown):
        return None
    return core.Rollover(next_cert, switch_at)
