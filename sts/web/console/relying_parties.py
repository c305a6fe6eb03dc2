"""The relying parties: list, add (certificate or metadata), edit the policy, remove."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from sts.model import RelyingParty
from sts.web.console import forms
from sts.web.console.core import CLAIM_URIS, MAX_UPLOAD, ConsoleCore, _form_values, _now, _text, optional_module


class RelyingPartyPages(ConsoleCore):
    """The relying parties: list, add (certificate or metadata), edit the policy, remove."""

    # -- relying parties ---------------------------------------------------------------------------------

    def _rp_rows(self) -> list[dict[str, Any]]:
        now = _now()
        return [{"rp": rp, "cert": forms.cert_info(rp.cert_pem, now),
                 "next_cert": forms.cert_info(getattr(rp, "next_cert_pem", None), now)}
                for rp in self.runtime.stores.relying_parties.list()]

    async def rps(self, request: Request) -> Response:
        return self.render(request, "rps.html", rows=await run_in_threadpool(self._rp_rows))

    def _rp_page(self, request: Request, template: str, form: forms.RpForm, status: int = 200,
                 **extra: Any) -> Response:
        return self.render(request, template, status, values=form.values, errors=form.errors,
                           claim_uris=CLAIM_URIS, supports=forms.rp_supports,
                           metadata_import=optional_module("sts.admin.rp_metadata") is not None, **extra)

    async def _certificate_field(self, form: FormData, errors: dict[str, str], prefix: str,
                                 now: datetime) -> bytes | None:
        upload = form.get(f"{prefix}_file")
        pasted = _text(form.get(f"{prefix}_pem")).strip()
        data: bytes | None = None
        if isinstance(upload, UploadFile) and upload.filename:
            data = await upload.read(MAX_UPLOAD + 1)
            if len(data) > MAX_UPLOAD:
                errors[prefix] = "the file is too large for a certificate"
                return None
            if not data:
                errors[prefix] = "the uploaded file is empty"
                return None
        elif pasted:
            data = pasted.encode("utf-8", "replace")
        if data is None:
            return None
        try:
            return forms.read_certificate(data, now)
        except ValueError as exc:
            errors[prefix] = str(exc)
            return None

    async def rp_new(self, request: Request) -> Response:
        defaults = {"token_type": "saml20", "encrypt": True, "signature": "rsa-sha256",
                    "data_encryption": "aes256-gcm", "key_transport": "rsa-oaep-mgf1p"}
        if request.method == "GET":
            return self._rp_page(request, "rp_form.html", forms.RpForm(defaults), mode="add")
        raw = await self.form(request)
        assert raw is not None
        form = forms.RpForm(_form_values(raw))
        now = _now()
        cert_pem = await self._certificate_field(raw, form.errors, "cert", now)
        if raw.get("source") == "metadata":
            cert_pem = await self._metadata(raw, form, now)
        result = await run_in_threadpool(self._add_rp, form, cert_pem, now)
        if result is None:
            return self._rp_page(request, "rp_form.html", form, 400, mode="add")
        self.audit("console.rp.add", self.actor(request), subject=result.endpoint)
        return RedirectResponse(f"{request.scope.get('root_path', '')}/rps?added={quote(result.endpoint)}", 303)

    async def _metadata(self, raw: FormData, form: forms.RpForm, now: datetime) -> bytes | None:
        module = optional_module("sts.admin.rp_metadata")
        if module is None:
            form.errors["metadata"] = "metadata import is not available in this build"
            return None
        upload, url = raw.get("metadata_file"), _text(raw.get("metadata_url")).strip()
        try:
            if isinstance(upload, UploadFile) and upload.filename:
                document = await upload.read(4 * 1024 * 1024)
            elif url:
                document = await run_in_threadpool(module.fetch_rp_metadata, url)
            else:
                form.errors["metadata"] = "choose a metadata file or give its URL"
                return None
            endpoint, cert = module.parse_rp_metadata(document)
        except (ValueError, OSError) as exc:
            form.errors["metadata"] = str(exc) or "the metadata could not be read"
            return None
        form.values["endpoint"] = endpoint
        try:
            return forms.read_certificate(cert, now)
        except ValueError as exc:
            form.errors["metadata"] = f"the certificate in the metadata: {exc}"
            return None

    def _add_rp(self, form: forms.RpForm, cert_pem: bytes | None, now: datetime) -> RelyingParty | None:
        store = self.runtime.stores.relying_parties
        rp = forms.build_rp(form, base=None, cert_pem=cert_pem, next_cert_pem=None,
                            defaults=self._lifetime_defaults(), now=now)
        if rp is None:
            return None
        if store.get(rp.endpoint) is not None:
            form.errors["endpoint"] = f"a relying party with endpoint {rp.endpoint} already exists"
            return None
        try:
            store.add(rp)
        except ValueError as exc:
            form.errors["endpoint"] = str(exc)
            return None
        return rp

    async def _existing_rp(self, request: Request) -> RelyingParty | Response:
        """The relying party named by ``?endpoint=``, or the 404 page to answer with."""
        endpoint = request.query_params.get("endpoint", "")
        existing = await run_in_threadpool(self.runtime.stores.relying_parties.get, endpoint)
        if existing is None:
            return self.render(request, "message.html", 404, title="Not found",
                               message=f"No relying party with endpoint {endpoint}.")
        return existing

    def _lifetime_defaults(self) -> tuple[int, int]:
        """The default and maximum token lifetimes (seconds) from the settings, for a form left blank."""
        settings = self.runtime.settings
        return settings.default_lifetime_seconds, settings.max_lifetime_seconds

    async def rp_edit(self, request: Request) -> Response:
        existing = await self._existing_rp(request)
        if isinstance(existing, Response):
            return existing
        now = _now()
        info: dict[str, Any] = {"cert": forms.cert_info(existing.cert_pem, now),
                "next_cert": forms.cert_info(getattr(existing, "next_cert_pem", None), now)}
        if request.method == "GET":
            return self._rp_page(request, "rp_form.html", forms.RpForm(forms.rp_form_values(existing)),
                                 mode="edit", rp=existing, **info)
        raw = await self.form(request)
        assert raw is not None
        form = forms.RpForm(_form_values(raw))
        form.values["endpoint"] = existing.endpoint
        cert_pem = await self._certificate_field(raw, form.errors, "cert", now)
        next_pem = await self._certificate_field(raw, form.errors, "next_cert", now)
        rp = forms.build_rp(form, base=existing, cert_pem=cert_pem, next_cert_pem=next_pem,
                            defaults=self._lifetime_defaults(), now=now)
        if rp is None:
            return self._rp_page(request, "rp_form.html", form, 400, mode="edit", rp=existing, **info)
        await run_in_threadpool(self.runtime.stores.relying_parties.update, rp)
        self.audit("console.rp.update", self.actor(request), subject=rp.endpoint)
        return RedirectResponse(f"{request.scope.get('root_path', '')}/rps?updated={quote(rp.endpoint)}", 303)

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
        await run_in_threadpool(self.runtime.stores.relying_parties.remove, existing.endpoint)
        self.audit("console.rp.remove", self.actor(request), subject=existing.endpoint)
        return RedirectResponse(f"{request.scope.get('root_path', '')}/rps?removed={quote(existing.endpoint)}", 303)
