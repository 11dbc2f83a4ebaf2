"""An email backend for bench/soak.py's stack: counts what would be sent, keeps no
address and no text.

Each message appends one line per recipient to `AMANAH_SOAK_MAIL_LOG`: a keyed hash of
the recipient and one of the subject (key `AMANAH_SOAK_MAIL_KEY`, the soak's own). The
soak computes the same hashes for every breach notice it expects and counts how often
each was sent. Lines are short single writes in append mode: processes do not
interleave them.
"""

import hashlib
import hmac
import os

from django.core.mail.backends.base import BaseEmailBackend


def mail_hash(key: str, value: str) -> str:
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()[:24]


class CountingEmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages) -> int:
        key = os.environ["AMANAH_SOAK_MAIL_KEY"]
        lines = [
            f"{mail_hash(key, to.strip().lower())} {mail_hash(key, message.subject)}\n"
            for message in email_messages
            for to in message.recipients()
        ]
        if lines:
            with open(os.environ["AMANAH_SOAK_MAIL_LOG"], "a") as f:
                f.write("".join(lines))
        return len(email_messages)
