"""Delivering an alert: an e-mail (SMTP) and/or a Slack-compatible webhook ({"text": ...}).

Each channel reports its own outcome; one failing never stops the other. Secrets (the SMTP
password, the webhook URL, which carries its token) never appear in an outcome or a log line.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage

import requests

from app.config import Settings

log = logging.getLogger(__name__)
TIMEOUT = 10.0


def channels(settings: Settings) -> list[str]:
    configured = []
    if settings.alert_webhook_url:
        configured.append("webhook")
    if settings.smtp_host and settings.alert_email_to:
        configured.append("email")
    return configured


def send_webhook(settings: Settings, subject: str, body: str) -> str:
    session = requests.Session()
    session.trust_env = False  # the alert goes where it is configured to, not via a proxy
    try:
        response = session.post(settings.alert_webhook_url, json={"text": f"*{subject}*\n{body}"},
                                timeout=TIMEOUT)
    except requests.RequestException as exc:
        return f"error: {type(exc).__name__}"
    return "sent" if response.status_code < 300 else f"error: HTTP {response.status_code}"


def send_email(settings: Settings, subject: str, body: str) -> str:
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = settings.alert_email_from
    message["To"] = settings.alert_email_to
    message.set_content(body)
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=TIMEOUT) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_username:
                smtp.login(settings.smtp_username, settings.smtp_password)
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        return f"error: {type(exc).__name__}"
    return "sent"


def deliver(settings: Settings, subject: str, body: str) -> dict[str, str]:
    outcome: dict[str, str] = {}
    if "webhook" in channels(settings):
        outcome["webhook"] = send_webhook(settings, subject, body)
    if "email" in channels(settings):
        outcome["email"] = send_email(settings, subject, body)
    if not outcome:
        outcome["console"] = "recorded only: no ALERT_WEBHOOK_URL or SMTP_HOST/ALERT_EMAIL_TO"
    for channel, result in outcome.items():
        if result.startswith("error"):
            log.warning("alert not delivered", extra={"channel": channel, "result": result})
    return outcome
