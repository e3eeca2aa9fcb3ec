"""The API tokens page: each user lists, creates and revokes their own tokens."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from apps.api.models import ApiToken
from apps.api.services import create_token, revoke_token


@require_GET
@login_required
def token_list(request):
    tokens = ApiToken.objects.filter(user=request.user)[:100]
    context = {
        "tokens": tokens,
        "new_key": request.session.pop("new_api_key", None),
        "nav": "tokens",
    }
    return render(request, "api/tokens.html", context)


@require_POST
@login_required
def token_create(request):
    try:
        token, raw = create_token(request.user, request.POST.get("name", ""))
    except ValueError as exc:
        messages.error(request, str(exc))
        return redirect("tokens:list")
    # Shown once, on the next page view, then gone: the database keeps only its hash.
    request.session["new_api_key"] = {"id": token.pk, "name": token.name, "key": raw}
    return redirect("tokens:list")


@require_POST
@login_required
def token_revoke(request, token_id: int):
    if revoke_token(request.user, token_id):
        messages.info(request, "Token revoked: requests with it now answer 401.")
    else:
        messages.error(request, "No such active token of yours.")
    return redirect("tokens:list")
