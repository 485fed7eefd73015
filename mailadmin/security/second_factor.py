"""Two-factor sign-in: who needs it, enrolment, verification, backup codes.

A TOTP authenticator app is the second factor; single-use backup codes stand in for a lost
phone. Mail administrators (and superusers) must use it; anybody may. Once a user has a
confirmed device, every sign-in asks for it.
"""

import io
from dataclasses import dataclass
from datetime import datetime

import qrcode
import qrcode.image.svg
from django.db import transaction
from django.utils.translation import gettext_lazy as _
from django_otp import devices_for_user, user_has_device
from django_otp import login as otp_login
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from mailadmin.roles import user_is_mail_administrator

AUTHENTICATOR_NAME = "Authenticator app"
BACKUP_CODES_NAME = "Backup codes"
BACKUP_CODE_COUNT = 10


class SecondFactorThrottled(Exception):
    """Too many wrong codes in a row: verification pauses until ``locked_until``."""

    def __init__(self, message: str, *, locked_until: datetime | None):
        super().__init__(message)
        self.locked_until = locked_until


def second_factor_required(*, user) -> bool:
    """Mail administrators and superusers may not work without a second factor."""
    return user.is_authenticated and user_is_mail_administrator(user)


def second_factor_expected(*, user) -> bool:
    """Whether this user's session must pass the second factor before doing anything.

    Remembered on the user object, which lives for one request: the middleware and every
    admin permission check of a page ask again and again.
    """
    if not user.is_authenticated:
        return False
    expected = getattr(user, "_second_factor_expected", None)
    if expected is None:
        expected = second_factor_required(user=user) or user_has_device(user, confirmed=True)
        user._second_factor_expected = expected
    return expected


def second_factor_satisfied(*, user) -> bool:
    """True when the session may proceed: verified, or the user has no second factor to give.

    Verification comes from django-otp's middleware (``user.is_verified``); without it a
    user who owes a second factor is simply not verified.
    """
    if not second_factor_expected(user=user):
        return True
    is_verified = getattr(user, "is_verified", None)
    return bool(is_verified and is_verified())


def authenticator_for_enrolment(*, user) -> TOTPDevice:
    """The user's unconfirmed authenticator, created on first use; confirmed by a first code."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=AUTHENTICATOR_NAME, confirmed=False)
    return device


def authenticator_qr_svg(*, device: TOTPDevice) -> str:
    """The device's otpauth:// URL as an SVG QR code, made here so no third party sees it."""
    image = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage)
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue().decode()


def authenticator_secret(*, device: TOTPDevice) -> str:
    """The base32 secret, grouped by four, for apps that cannot scan."""
    secret = device.config_url.split("secret=", 1)[1].split("&", 1)[0]
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def authenticator_confirm(*, request, device: TOTPDevice, code: str) -> list[str] | None:
    """Confirm an enrolment with the first code; return fresh backup codes, or None if wrong.

    The session counts as verified from then on. Any older authenticator of the user is
    replaced: one phone at a time.
    """
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().get(pk=device.pk)
        if device.confirmed or not device.verify_token(_normalise(code)):
            return None
        TOTPDevice.objects.filter(user=device.user, confirmed=True).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        codes = backup_codes_generate(user=device.user)
    otp_login(request, device)
    return codes


def backup_codes_generate(*, user) -> list[str]:
    """Replace the user's backup codes with new ones and return them (shown once)."""
    with transaction.atomic():
        device, _created = StaticDevice.objects.get_or_create(
            user=user, defaults={"name": BACKUP_CODES_NAME, "confirmed": True}
        )
        device.token_set.all().delete()
        codes = [StaticToken.random_token() for _ in range(BACKUP_CODE_COUNT)]
        StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


def backup_codes_left(*, user) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def second_factor_verify(*, request, code: str) -> Device | None:
    """Check a code from the authenticator app (6 digits) or a backup code.

    On success the session is verified and the device returned; a backup code is used up.
    Raises ``SecondFactorThrottled`` while django-otp's back-off after wrong codes runs.
    """
    user = request.user
    code = _normalise(code)
    kind = TOTPDevice if code.isdigit() else StaticDevice
    for device in devices_for_user(user, confirmed=True):
        if not isinstance(device, kind):
            continue
        with transaction.atomic():
            device = type(device).objects.select_for_update().get(pk=device.pk)
            allowed, details = device.verify_is_allowed()
            if not allowed:
                raise SecondFactorThrottled(
                    str(_("Too many wrong codes. Wait a moment, then try again.")),
                    locked_until=(details or {}).get("locked_until"),
                )
            if device.verify_token(code):
                otp_login(request, device)
                return device
    return None


def second_factor_remove(*, user) -> int:
    """Remove the user's authenticator and backup codes; return how many devices went."""
    removed = 0
    for device in list(devices_for_user(user, confirmed=None)):
        device.delete()
        removed += 1
    return removed


@dataclass(frozen=True)
class SecondFactorStatus:
    required: bool
    authenticator: TOTPDevice | None
    backup_codes_left: int


def second_factor_status(*, user) -> SecondFactorStatus:
    return SecondFactorStatus(
        required=second_factor_required(user=user),
        authenticator=TOTPDevice.objects.filter(user=user, confirmed=True).first(),
        backup_codes_left=backup_codes_left(user=user),
    )


def _normalise(code: str) -> str:
    return "".join((code or "").split()).lower()
