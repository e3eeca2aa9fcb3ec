from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from apps.api.api import api
from apps.dashboard import views as dashboard_views

urlpatterns = [
    path("", dashboard_views.home, name="home"),
    path("healthz", dashboard_views.healthz, name="healthz"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("runs/", include("apps.runs.urls")),
    path("trajectories/", include("apps.rollouts.urls")),
    path("review/", include("apps.reviews.urls")),
    path("curriculum/", include("apps.curriculum.urls")),
    path("checkpoints/", dashboard_views.checkpoints, name="checkpoints"),
    path("api/", api.urls),
    path("tokens/", include("apps.api.urls")),
    path("admin/", admin.site.urls),
]

if settings.DEBUG:
    from django.contrib.staticfiles.urls import staticfiles_urlpatterns

    urlpatterns += staticfiles_urlpatterns()
