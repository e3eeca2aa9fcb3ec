from apps.dashboard.permissions import is_operator, is_reviewer


def roles(request) -> dict:
    user = getattr(request, "user", None)
    if user is None:
        return {}
    return {"is_operator": is_operator(user), "is_reviewer": is_reviewer(user)}
