from apps.accounts.models import User


def user_get_by_username(*, username: str) -> User | None:
    return User.objects.filter(username=username).first()
