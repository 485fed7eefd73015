"""The portal's roles (groups created by migration 0003_roles) and who holds them."""

MAIL_ADMINISTRATORS = "Mail administrators"
CLUB_STAFF = "Club staff"
BLACKLIST_MANAGERS = "Blacklist managers"


def user_is_mail_administrator(user) -> bool:
    return user.is_superuser or user.groups.filter(name=MAIL_ADMINISTRATORS).exists()
