"""Notification transports: one small class per channel kind, each with `notify(alert, recipient)`."""

import smtplib
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from alerts.models import MLAlert, NotificationChannel
from forecasting.metrics import better_or_worse

SITE_NAME = "Forecast Arena"
IN_APP_RECIPIENT = "inbox"


class TransportError(Exception):
    """A delivery failed; `permanent` says whether trying again can help, `recipient_refused`
    whether the refusal was of this recipient alone (the channel itself works)."""

    def __init__(self, message: str, *, permanent: bool = False, recipient_refused: bool = False):
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.recipient_refused = recipient_refused


class Transport:
    """Delivers one alert to one recipient over one channel, or raises TransportError."""

    def __init__(self, channel: NotificationChannel):
        self.channel = channel

    def recipients(self, alert: MLAlert) -> list[str]:
        raise NotImplementedError

    def notify(self, alert: MLAlert, recipient: str) -> None:
        raise NotImplementedError


class InApp(Transport):
    """The alert itself is the in-app notification (the inbox and its unread badge)."""

    def recipients(self, alert: MLAlert) -> list[str]:
        return [IN_APP_RECIPIENT]

    def notify(self, alert: MLAlert, recipient: str) -> None:
        # Nothing to send: the committed alert is what the inbox shows.
        return None


class Email(Transport):
    """One message per recipient through Django's configured email backend."""

    def recipients(self, alert: MLAlert) -> list[str]:
        from alerts.selectors import email_recipients

        return email_recipients(severity=alert.severity)

    def notify(self, alert: MLAlert, recipient: str) -> None:
        message = render_alert_email(alert=alert, tenant=_current_tenant(), recipient=recipient)
        try:
            message.send()
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            detail = "; ".join(
                f"{address}: {code} {_text(reply)}"
                for address, (code, reply) in exc.recipients.items()
            )
            raise TransportError(
                f"Recipient refused: {detail}",
                permanent=all(_is_permanent(c) for c in codes),
                recipient_refused=True,
            ) from exc
        except smtplib.SMTPResponseException as exc:
            # Covers refusals of the sender, the message (DATA), HELO, and authentication failures.
            raise TransportError(
                f"SMTP {exc.smtp_code} {_text(exc.smtp_error)} ({type(exc).__name__})",
                permanent=_is_permanent(exc.smtp_code),
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            # Disconnects, refused connections and timeouts say nothing final about the message.
            raise TransportError(f"{type(exc).__name__}: {exc}", permanent=False) from exc


TRANSPORTS: dict[str, type[Transport]] = {
    NotificationChannel.Kind.IN_APP: InApp,
    NotificationChannel.Kind.EMAIL: Email,
}


def transport_for(channel: NotificationChannel) -> Transport:
    return TRANSPORTS[channel.kind](channel)


def _is_permanent(code: int) -> bool:
    # RFC 5321: 5yz replies are permanent failures, 4yz transient ones.
    return 500 <= code < 600


def _text(reply: bytes | str) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)


def _current_tenant():
    from tenants.selectors import current_tenant

    return current_tenant()


# --- The email itself ---------------------------------------------------------------------

# Metadata keys shown as the email's key numbers, in this order, with their labels and units.
KEY_NUMBERS: tuple[tuple[str, str, str], ...] = (
    ("baseline_mae", "Baseline MAE", ""),
    ("recent_mae", "Recent MAE", ""),
    ("drift_pct", "MAE change", "worse%"),
    ("threshold_pct", "Drift threshold", "%"),
    ("champion_version", "Champion", ""),
    ("challenger_version", "Challenger", ""),
    ("new_version", "New version", ""),
    ("champion_mae", "Champion MAE", ""),
    ("challenger_mae", "Challenger MAE", ""),
    ("mae_improvement_pct", "Challenger's MAE", "better%"),
    ("champion_mape", "Champion MAPE", "%"),
    ("challenger_mape", "Challenger MAPE", "%"),
    ("mape_improvement_pct", "Challenger's MAPE", "better%"),
    ("confidence", "Confidence", ""),
    ("trigger", "Trigger", ""),
    ("error", "Error", ""),
)


@dataclass(frozen=True)
class KeyNumber:
    label: str
    value: str


def key_numbers(metadata: dict) -> list[KeyNumber]:
    """The metadata worth reading in a notification, formatted (known keys first, then the rest)."""
    numbers = []
    known = {key for key, _, _ in KEY_NUMBERS}
    for key, label, unit in KEY_NUMBERS:
        if metadata.get(key) not in (None, ""):
            numbers.append(KeyNumber(label, _format(metadata[key], unit)))
    for key, value in metadata.items():
        if (
            key not in known
            and isinstance(value, str | int | float)
            and not isinstance(value, bool)
        ):
            numbers.append(KeyNumber(key.replace("_", " ").capitalize(), _format(value, "")))
    return numbers


def _format(value, unit: str) -> str:
    """A metadata value as shown: a change in % as "x% better" or "x% worse" ("worse%": a rise
    is worse; "better%": a rise is better), never a bare sign."""
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if unit in ("worse%", "better%") and is_number:
        return better_or_worse(-value if unit == "worse%" else value)
    text = f"{value:,.2f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)
    return f"{text}%" if unit == "%" else text


def absolute_url(*, tenant, path: str) -> str:
    """The link to `path` on the tenant's primary host, under SITE_SCHEME and SITE_PORT."""
    if path.startswith(("http://", "https://")):
        return path
    domain = tenant.get_primary_domain()
    host = domain.domain if domain is not None else tenant.schema_name
    scheme = settings.SITE_SCHEME
    port = str(settings.SITE_PORT or "")
    if port and port != {"http": "80", "https": "443"}.get(scheme):
        host = f"{host}:{port}"
    return f"{scheme}://{host}{path if path.startswith('/') else '/' + path}"


def alert_email_subject(*, alert: MLAlert, tenant) -> str:
    title = " ".join(alert.title.split())  # a header must be one line
    return f"[{SITE_NAME} · {tenant.name}] {alert.get_severity_display()}: {title}"


def render_alert_email(*, alert: MLAlert, tenant, recipient: str) -> EmailMultiAlternatives:
    """The alert as an email to one recipient: subject, plain-text body and HTML alternative."""
    context = {
        "alert": alert,
        "tenant": tenant,
        "site_name": SITE_NAME,
        "numbers": key_numbers(alert.metadata or {}),
        "link": absolute_url(tenant=tenant, path=alert.action_url),
        "requires_action": alert.requires_action,
    }
    message = EmailMultiAlternatives(
        subject=alert_email_subject(alert=alert, tenant=tenant),
        body=render_to_string("alerts/email/alert.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[recipient],
        headers={"X-Forecast-Arena-Alert": f"{tenant.schema_name}/{alert.pk}"},
    )
    message.attach_alternative(render_to_string("alerts/email/alert.html", context), "text/html")
    return message
