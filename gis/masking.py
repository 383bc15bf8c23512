"""Masking of personal data for display: who may see what is decided by role elsewhere;
these functions only say how a value looks once masked."""

from __future__ import annotations

import re


def mask_phone(phone: str | None) -> str | None:
    """``138****5678``: keep the first three and last four digits of a mobile number."""
    if not phone:
        return phone
    digits = re.sub(r"\D", "", phone)
    if len(digits) < 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def mask_id_number(value: str | None) -> str | None:
    """``320211********1234``: an 18-digit resident ID keeps its region code and last four."""
    if not value:
        return value
    text = value.strip()
    if len(text) <= 10:
        return "*" * len(text)
    return text[:6] + "*" * (len(text) - 10) + text[-4:]


def mask_name(name: str | None) -> str | None:
    """``张*`` / ``欧阳**``: a person's surname stays, the given name is hidden."""
    if not name:
        return name
    surname = 2 if len(name) >= 4 else 1
    return name[:surname] + "*" * (len(name) - surname)
