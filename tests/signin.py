"""Signing a test client in past the second factor administrators must give."""

from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice


def client_sign_in_verified(client, user, device=None):
    """Sign ``client`` in as ``user`` as if the authenticator code had just been typed.

    Uses ``device`` or the user's confirmed authenticator, creating one when there is none.
    """
    device = device or TOTPDevice.objects.filter(user=user, confirmed=True).first()
    device = device or TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client
