"""The ways a message leaves: e-mail through SMTP or SendGrid's v3 API, SMS through Amazon SNS.

`send(cfg, outgoing)` sends one message and returns the provider's message id, or raises `DeliveryError`
(`permanent` when trying again cannot help: the server refused this recipient or this message). Addresses
are validated here (`normalise`) and only ever logged masked (`mask`).

E-mail is multipart/alternative (plain text + HTML), with attachments beside it, a stable `Message-ID` that
the outbox derives from the idempotency key, and the one-click unsubscribe headers of RFC 8058:
`List-Unsubscribe: <https://...>` (plus an optional `<mailto:...>`) and
`List-Unsubscribe-Post: List-Unsubscribe=One-Click`. (Receivers such as Gmail honour one-click only on
DKIM-signed mail whose signature covers both headers: signing is the sending MTA's or SendGrid's job.)
"""
from __future__ import annotations

import base64
import hashlib
import html
import logging
import re
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate

import requests

from config import EMAIL_PATTERN, PHONE_PATTERN, Config
from warehouse.notify_state import Attachment

log = logging.getLogger("caskalytics.alerts.channels")
CHANNELS = ("email", "sms")
SMS_GSM7 = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
               "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
SMS_GSM7_EXTENDED = set("^{}\\[~]|€")      # two 7-bit units each


class AddressError(ValueError):
    """An address that cannot be a recipient on its channel."""


class DeliveryError(Exception):
    def __init__(self, message: str, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


@dataclass
class Outgoing:
    """One message as a channel sends it."""
    channel: str
    recipient: str
    subject: str
    text: str
    html: str | None = None
    headers: dict[str, str] = field(default_factory=dict)     # Message-ID and the like, from the outbox row
    attachments: list[Attachment] = field(default_factory=list)
    key: str = ""                                             # the idempotency key
    unsubscribe_url: str | None = None


# -- addresses ----------------------------------------------------------------------------------------------
def normalise(channel: str, address: str) -> str:
    """The address as stored and compared: e-mail trimmed and lower-cased; a phone number in E.164."""
    if channel not in CHANNELS:
        raise AddressError(f"channel must be 'email' or 'sms', got {channel!r:.40}")
    if not isinstance(address, str):
        raise AddressError(f"an address must be text, got {type(address).__name__}")
    address = address.strip()
    if channel == "email":
        address = address.lower()     # local parts are case-sensitive in theory, never in practice
        if len(address) > 254 or not EMAIL_PATTERN.match(address):
            raise AddressError(f"not an e-mail address: {mask(address)!r}")
    elif not PHONE_PATTERN.match(address):
        raise AddressError(f"not a phone number in E.164 form such as +15555550123: {mask(address)!r}")
    return address


def channel_of(address: str) -> str:
    """`sms` for a phone number, else `email` (config recipients say which by their form)."""
    return "sms" if address.strip().startswith("+") else "email"


def mask(address: str) -> str:
    """For logs and lists: `g***@example.com`, `+1******4567`."""
    address = str(address)
    if "@" in address:
        local, _, domain = address.rpartition("@")
        return f"{local[:1]}***@{domain}"
    if address.startswith("+") and len(address) > 6:
        return address[:2] + "*" * (len(address) - 6) + address[-4:]
    return "***"


def message_id(key: str, sender: str) -> str:
    """The Message-ID of the message with idempotency key `key`: the same on every attempt."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:40]
    return f"<caskalytics.{digest}@{sender.rpartition('@')[2]}>"


# -- SMS text -----------------------------------------------------------------------------------------------
def sms_units(text: str) -> tuple[int, int]:
    """(length, single-message limit): 7-bit units and 160 when GSM-7 can carry the text, else UCS-2's 70."""
    if all(ch in SMS_GSM7 or ch in SMS_GSM7_EXTENDED for ch in text):
        return sum(2 if ch in SMS_GSM7_EXTENDED else 1 for ch in text), 160
    return len(text.encode("utf-16-le")) // 2, 70


def fit_sms(text: str, link: str | None = None) -> str:
    """`text` and then `link` in one SMS where possible: the text is shortened (ending in "..."), never the
    link. A link too long for one SMS is sent whole, in a multi-part message."""
    text = " ".join(text.split())
    whole = f"{text} {link}" if link else text
    length, limit = sms_units(whole)
    if length <= limit:
        return whole
    room = limit - (sms_units(" " + link)[0] if link else 0) - 3
    if room < 10:
        return whole
    shortened = text
    while shortened and sms_units(shortened)[0] > room:
        shortened = shortened[:-1]
    return f"{shortened.rstrip()}...{' ' + link if link else ''}"


# -- e-mail -------------------------------------------------------------------------------------------------
def list_unsubscribe(url: str, mailto: str = "") -> str:
    targets = [f"<{url}>"] + ([f"<mailto:{mailto}?subject=unsubscribe>"] if mailto else [])
    return ", ".join(targets)


def with_footer(out: Outgoing) -> tuple[str, str | None]:
    """Text and HTML bodies with the unsubscribe link at the end (for readers whose client shows no button)."""
    if not out.unsubscribe_url:
        return out.text, out.html
    text = f"{out.text.rstrip()}\n\n--\nUnsubscribe: {out.unsubscribe_url}\n"
    if out.html is None:
        return text, None
    link = (f'<p style="color:#888;font-size:12px"><a href="{html.escape(out.unsubscribe_url)}">Unsubscribe</a>'
            " from these messages.</p>")
    at = out.html.lower().rfind("</body>")
    return text, (out.html[:at] + link + out.html[at:]) if at >= 0 else out.html + link


def build_email(cfg: Config, out: Outgoing) -> EmailMessage:
    email_cfg = cfg.notify.email
    text, body_html = with_footer(out)
    message = EmailMessage()
    message["From"] = email_cfg.sender
    message["To"] = out.recipient
    message["Subject"] = out.subject
    message["Date"] = formatdate(usegmt=True)
    message["Auto-Submitted"] = "auto-generated"     # RFC 3834: no vacation replies to this
    for name, value in out.headers.items():
        message[name] = value
    if out.unsubscribe_url:
        message["List-Unsubscribe"] = list_unsubscribe(out.unsubscribe_url, email_cfg.unsubscribe_mailto)
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(text)
    if body_html is not None:
        message.add_alternative(body_html, subtype="html")
    for attachment in out.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        message.add_attachment(attachment.data, maintype=maintype, subtype=subtype or "octet-stream",
                               filename=attachment.name)
    return message


def send_smtp(cfg: Config, message: EmailMessage) -> str:
    """Hand the message to the SMTP server; its Message-ID is the provider id (SMTP gives no other)."""
    email_cfg = cfg.notify.email
    recipient = message["To"]
    try:
        with smtplib.SMTP(email_cfg.smtp_host, email_cfg.smtp_port, timeout=email_cfg.timeout_seconds) as smtp:
            smtp.ehlo()
            if email_cfg.starttls:
                context = ssl.create_default_context(cafile=email_cfg.ca_bundle or None)
                smtp.starttls(context=context)
                smtp.ehlo()
            if email_cfg.username:
                password = cfg.secret(email_cfg.password_env)
                if password is None:
                    raise DeliveryError(f"SMTP AUTH needs the password in {email_cfg.password_env}, which is unset")
                smtp.login(email_cfg.username, password)
            smtp.send_message(message, from_addr=email_cfg.sender, to_addrs=[recipient])
    except smtplib.SMTPRecipientsRefused as exc:
        code, reason = next(iter(exc.recipients.values()))
        raise DeliveryError(f"SMTP server refused {mask(recipient)}: {code} {_text(reason)}", permanent=code >= 500) from None
    except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
        raise DeliveryError(f"SMTP server refused the message: {exc.smtp_code} {_text(exc.smtp_error)}",
                            permanent=exc.smtp_code >= 500) from None
    except smtplib.SMTPAuthenticationError as exc:     # a config problem: mail waits for the fix
        raise DeliveryError(f"SMTP AUTH refused: {exc.smtp_code} {_text(exc.smtp_error)}") from None
    except (smtplib.SMTPException, ssl.SSLError, OSError) as exc:
        raise DeliveryError(f"SMTP {email_cfg.smtp_host}:{email_cfg.smtp_port}: {type(exc).__name__}: {exc}") from None
    return message["Message-ID"] or ""


def sendgrid_payload(cfg: Config, out: Outgoing) -> dict:
    """The v3 `POST /v3/mail/send` body (SendGrid wants text/plain before text/html)."""
    email_cfg = cfg.notify.email
    text, body_html = with_footer(out)
    headers = dict(out.headers)
    if out.unsubscribe_url:
        headers["List-Unsubscribe"] = list_unsubscribe(out.unsubscribe_url, email_cfg.unsubscribe_mailto)
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    payload: dict = {
        "personalizations": [{"to": [{"email": out.recipient}]}],
        "from": {"email": email_cfg.sender},
        "subject": out.subject,
        "content": [{"type": "text/plain", "value": text}]
                   + ([{"type": "text/html", "value": body_html}] if body_html is not None else []),
        "headers": headers,
        # SendGrid has no idempotency key; this rides along to its event webhooks, so a duplicate after an
        # in-doubt resend can be recognised there (as by the Message-ID in the mailbox).
        "custom_args": {"idempotency_key": out.key},
    }
    if out.attachments:
        payload["attachments"] = [{"content": base64.b64encode(a.data).decode(), "type": a.content_type,
                                   "filename": a.name, "disposition": "attachment"} for a in out.attachments]
    return payload


def send_sendgrid(cfg: Config, api_key: str, out: Outgoing) -> str:
    url = cfg.notify.email.sendgrid_url + "/v3/mail/send"
    try:
        response = requests.post(url, json=sendgrid_payload(cfg, out), timeout=cfg.notify.email.timeout_seconds,
                                 headers={"Authorization": f"Bearer {api_key}"})
    except requests.RequestException as exc:
        raise DeliveryError(f"SendGrid: {type(exc).__name__}: {exc}") from None
    if response.status_code in (200, 202):
        return response.headers.get("X-Message-Id", "")
    try:
        reasons = "; ".join(str(e.get("message")) for e in response.json().get("errors", []))
    except (ValueError, AttributeError):
        reasons = response.text[:200]
    # 400/413: this message can never be accepted. 401/403 (key) and 429/5xx: later, or after a fix.
    raise DeliveryError(f"SendGrid answered {response.status_code}: {reasons}",
                        permanent=response.status_code in (400, 413))


# -- SMS ----------------------------------------------------------------------------------------------------
def sns_client(cfg: Config):
    import boto3
    from botocore.config import Config as BotoConfig
    sms = cfg.notify.sms
    return boto3.client(
        "sns", region_name=sms.sns_region, endpoint_url=sms.endpoint_url or None,
        aws_access_key_id=cfg.secret(sms.access_key_id_env), aws_secret_access_key=cfg.secret(sms.secret_access_key_env),
        config=BotoConfig(connect_timeout=sms.timeout_seconds, read_timeout=sms.timeout_seconds,
                          retries={"max_attempts": 1}))     # the outbox retries, with its own backoff


def send_sms(cfg: Config, out: Outgoing) -> str:
    from botocore.exceptions import BotoCoreError, ClientError
    try:
        answer = sns_client(cfg).publish(
            PhoneNumber=out.recipient, Message=out.text,
            MessageAttributes={"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": cfg.notify.sms.sms_type}})
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        raise DeliveryError(f"SNS refused the SMS to {mask(out.recipient)}: {code}",
                            permanent=code in ("InvalidParameter", "InvalidParameterValue")) from None
    except BotoCoreError as exc:
        raise DeliveryError(f"SNS: {type(exc).__name__}: {exc}") from None
    return answer["MessageId"]


# -- dispatch -----------------------------------------------------------------------------------------------
def send(cfg: Config, out: Outgoing) -> str:
    """Send one message on its channel; the provider's message id."""
    try:
        if out.channel == "sms":
            return send_sms(cfg, out)
        api_key = cfg.secret(cfg.notify.email.sendgrid_api_key_env)
        if api_key:
            return send_sendgrid(cfg, api_key, out)
        return send_smtp(cfg, build_email(cfg, out))
    except DeliveryError as exc:
        # Servers often quote the address in their refusal ("550 <ann@example.com>: no such user"): errors
        # end up in logs and in /outbox, where addresses are masked.
        scrubbed = re.sub(re.escape(out.recipient), mask(out.recipient), str(exc), flags=re.IGNORECASE)
        raise DeliveryError(scrubbed, exc.permanent) from None


def _text(value: bytes | str) -> str:
    return (value.decode(errors="replace") if isinstance(value, bytes) else str(value)).strip()[:200]
