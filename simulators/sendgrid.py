"""A local SendGrid for the demo and the tests: the v3 `POST /v3/mail/send` endpoint in SendGrid's wire
format, keeping every accepted message so the demo can show what would have been mailed.

    POST /v3/mail/send        Authorization: Bearer <key>; JSON body (personalizations, from, subject,
                              content[], attachments[] base64, headers, custom_args). 202 with an empty body
                              and X-Message-Id on success; 400 with every validation error, 401 for a
                              missing or wrong key, each as {"errors": [{"message", "field", "help"}]}.
    GET  /_sim/messages       what was accepted: [{id, received_at, to, subject}, ...]
    GET  /_sim/messages/{id}  one accepted message: its JSON body as sent
    POST /_sim/faults         test hook: {"count": 2, "status": 503}

With `--mail-dir`, each accepted message is also written there as `<time>-<id>.json` (the request body) and
`<time>-<id>.eml` (the mail as a recipient would get it; open it in any mail client).

Run: python -m simulators.sendgrid --port 8097 [--key-env SENDGRID_API_KEY] [--mail-dir var/mail]
"""
from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets
import sys
import threading
from datetime import datetime, timezone
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit

from simulators.jsonserver import JsonApiSimulator, Reply, Request, argument_parser, serve_until_stopped

UTC = timezone.utc
HELP = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html"
EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
RESERVED_HEADERS = {"x-sg-id", "x-sg-eid", "received", "dkim-signature", "content-type", "content-transfer-encoding",
                    "to", "from", "subject", "reply-to", "cc", "bcc"}
MAX_BYTES = 30 * 1024 * 1024          # SendGrid's limit for the whole message


class SendgridSimulator(JsonApiSimulator):
    server_name = "nginx"
    methods = ("GET", "POST")
    fault_hook_fields = ("retry_after",)

    def __init__(self, *, api_key: str | None = None, mail_dir: str | Path | None = None, **kwargs):
        super().__init__(**kwargs)
        self.api_key = api_key              # None: any non-empty key is accepted
        self.mail_dir = Path(mail_dir) if mail_dir else None
        self.messages: list[dict] = []      # {"id", "received_at", "body"}: what was accepted, in order
        self._store_lock = threading.Lock()

    # -- SendGrid's error envelope ------------------------------------------------------------------------
    def error_body(self, status: int, message: str) -> object:
        return {"errors": [{"message": message, "field": None, "help": None}]}

    # -- routes -------------------------------------------------------------------------------------------
    def route(self, request: Request) -> Reply:
        if request.method == "POST" and request.path == "/v3/mail/send":
            return self.mail_send(request)
        if request.method == "GET" and request.path == "/_sim/messages":
            return Reply(200, [{"id": m["id"], "received_at": m["received_at"], "subject": m["body"].get("subject"),
                                "to": [to.get("email") for p in m["body"]["personalizations"] for to in p["to"]]}
                               for m in self.messages])
        if request.method == "GET" and request.path.startswith("/_sim/messages/"):
            wanted = request.path.rsplit("/", 1)[1]
            found = next((m for m in self.messages if m["id"] == wanted), None)
            return Reply(200, found["body"]) if found else Reply(404, self.error_body(404, "not found"))
        return Reply(404, self.error_body(404, "not found"))

    def mail_send(self, request: Request) -> Reply:
        given = request.headers.get("authorization", "")
        key = given.removeprefix("Bearer ").strip() if given.startswith("Bearer ") else ""
        if not key or (self.api_key is not None and not secrets.compare_digest(key, self.api_key)):
            return Reply(401, self.error_body(401, "The provided authorization grant is invalid, expired, or revoked"))
        if len(request.body) > MAX_BYTES:
            return Reply(413, self.error_body(413, "The total message size must be less than 30MB."))
        try:
            body = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            return Reply(400, {"errors": [{"message": "Bad Request", "field": None, "help": None}]})
        errors = validate(body)
        if errors:
            return Reply(400, {"errors": errors})
        message_id = secrets.token_urlsafe(16)[:22]
        self.store(message_id, body)
        return Reply(202, b"", {"X-Message-Id": message_id})

    def store(self, message_id: str, body: dict) -> None:
        received = datetime.now(UTC)
        with self._store_lock:
            self.messages.append({"id": message_id, "received_at": received.isoformat(), "body": body})
            if self.mail_dir is not None:
                self.mail_dir.mkdir(parents=True, exist_ok=True)
                stem = self.mail_dir / f"{received:%Y%m%dT%H%M%S%f}-{message_id}"
                stem.with_suffix(".json").write_text(json.dumps(body, indent=2))
                stem.with_suffix(".eml").write_bytes(as_email(body, message_id).as_bytes())


# -- validation, in SendGrid's words ------------------------------------------------------------------------
def _error(message: str, field: str | None, anchor: str) -> dict:
    return {"message": message, "field": field, "help": f"{HELP}#{anchor}"}


def validate(body: object) -> list[dict]:
    if not isinstance(body, dict):
        return [_error("Bad Request", None, "message.body")]
    errors = []
    personalizations = body.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        errors.append(_error("The personalizations field is required and must have at least one personalization.",
                             "personalizations", "-Personalizations-Errors"))
    else:
        for i, personalization in enumerate(personalizations):
            to = personalization.get("to") if isinstance(personalization, dict) else None
            if not isinstance(to, list) or not to:
                errors.append(_error("The to array is required for all personalization objects, and must have at "
                                     "least one email object with a valid email address.",
                                     f"personalizations.{i}.to", "message.personalizations.to"))
                continue
            for j, recipient in enumerate(to):
                if not isinstance(recipient, dict) or not EMAIL.match(str(recipient.get("email", ""))):
                    errors.append(_error("Does not contain a valid address.", f"personalizations.{i}.to.{j}.email",
                                         "message.personalizations.to"))
    sender = body.get("from")
    if not isinstance(sender, dict) or "email" not in sender:
        errors.append(_error("The from object must be provided for every email send. It is an object that requires "
                             "the email parameter, but may also contain a name parameter.", "from", "message.from"))
    elif not EMAIL.match(str(sender["email"])):
        errors.append(_error("The from email does not contain a valid address.", "from.email", "message.from"))
    all_have_subject = isinstance(personalizations, list) and personalizations and all(
        isinstance(p, dict) and p.get("subject") for p in personalizations)
    if not (isinstance(body.get("subject"), str) and body["subject"]) and not all_have_subject \
            and not body.get("template_id"):
        errors.append(_error("The subject is required. You can get around this requirement if you use a template "
                             "with a subject defined or if every personalization has a subject defined.",
                             "subject", "message.subject"))
    errors += _content_errors(body)
    errors += _attachment_errors(body.get("attachments"))
    headers = body.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        errors.append(_error("Invalid type. Expected: object of strings.", "headers", "message.headers"))
    elif reserved := sorted(name for name in headers if name.lower() in RESERVED_HEADERS):
        errors.append(_error(f"The following headers are reserved and cannot be set: {', '.join(reserved)}.",
                             "headers", "message.headers"))
    custom_args = body.get("custom_args", {})
    if not isinstance(custom_args, dict) or not all(isinstance(v, str) for v in custom_args.values()):
        errors.append(_error("Invalid type. Expected: string, given: a non-string custom_args value.", "custom_args",
                             "message.custom_args"))
    return errors


def _content_errors(body: dict) -> list[dict]:
    content = body.get("content")
    if not isinstance(content, list) or not content:
        if body.get("template_id"):
            return []
        return [_error("Unless a valid template_id is provided, the content parameter is required. There must be at "
                       "least one defined content block. We typically suggest both text/plain and text/html blocks "
                       "are included, but only one block is required.", "content", "message.content")]
    errors = []
    types = [block.get("type") if isinstance(block, dict) else None for block in content]
    for i, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("value"), str) or not block["value"]:
            errors.append(_error("The content value must be a string at least one character in length.",
                                 f"content.{i}.value", "message.content.value"))
    expected_order = [t for t in ("text/plain", "text/html") if t in types]
    if [t for t in types if t in ("text/plain", "text/html")] != expected_order or \
            types[:len(expected_order)] != expected_order:
        errors.append(_error("If present, text/plain content must be first, followed by text/html, followed by any "
                             "other content.", "content", "message.content.type"))
    return errors


def _attachment_errors(attachments: object) -> list[dict]:
    if attachments is None:
        return []
    if not isinstance(attachments, list):
        return [_error("Invalid type. Expected: array.", "attachments", "message.attachments")]
    errors = []
    for i, attachment in enumerate(attachments):
        attachment = attachment if isinstance(attachment, dict) else {}
        try:
            base64.b64decode(str(attachment.get("content", "")), validate=True)
            encoded = bool(attachment.get("content"))
        except (binascii.Error, ValueError):
            encoded = False
        if not encoded:
            errors.append(_error("The attachment content must be base64 encoded.", f"attachments.{i}.content",
                                 "message.attachments.content"))
        if not attachment.get("filename"):
            errors.append(_error("The attachment filename parameter is required.", f"attachments.{i}.filename",
                                 "message.attachments.filename"))
    return errors


def as_email(body: dict, message_id: str) -> EmailMessage:
    """The mail a recipient would get from this request (for browsing in the demo)."""
    message = EmailMessage()
    message["From"] = body["from"]["email"]
    message["To"] = ", ".join(to["email"] for p in body["personalizations"] for to in p["to"])
    message["Subject"] = body.get("subject") or body["personalizations"][0].get("subject", "")
    message["X-Message-Id"] = message_id
    for name, value in body.get("headers", {}).items():
        message[name] = value
    blocks = {block["type"]: block["value"] for block in body.get("content", [])}
    message.set_content(blocks.get("text/plain", ""))
    if "text/html" in blocks:
        message.add_alternative(blocks["text/html"], subtype="html")
    for attachment in body.get("attachments", []):
        maintype, _, subtype = attachment.get("type", "application/octet-stream").partition("/")
        message.add_attachment(base64.b64decode(attachment["content"]), maintype=maintype,
                               subtype=subtype or "octet-stream", filename=attachment["filename"])
    return message


# -- command line -------------------------------------------------------------------------------------------
def demo_process(cfg) -> tuple[list[str], int | None]:
    """How `make run` would start this simulator: arguments, and the port to wait for."""
    port = urlsplit(cfg.notify.email.sendgrid_url).port or 80
    return ["--port", str(port), "--key-env", cfg.notify.email.sendgrid_api_key_env,
            "--mail-dir", str(cfg.warehouse_dir / "mail")], port


def main(argv: list[str] | None = None) -> int:
    parser = argument_parser("simulators.sendgrid", __doc__, port=8097)
    parser.add_argument("--key-env", help="variable holding the only API key accepted (default: any)")
    parser.add_argument("--mail-dir", help="write each accepted message here as .json and .eml")
    args = parser.parse_args(argv)
    key = os.environ.get(args.key_env) if args.key_env else None
    sim = SendgridSimulator(api_key=key, mail_dir=args.mail_dir, host=args.host, port=args.port)
    return serve_until_stopped(sim, "SendGrid simulator on {url}" + (f", mail in {args.mail_dir}" if args.mail_dir else ""))


if __name__ == "__main__":
    sys.exit(main())
