from django.urls import path

from apps.runs import views

app_name = "runs"
urlpatterns = [
    path("", views.run_list, name="list"),
    path("new/", views.run_new, name="new"),
    path("compare/", views.run_compare, name="compare"),
    path("<int:run_id>/", views.run_detail, name="detail"),
    path("<int:run_id>/live/", views.run_live, name="live"),
    path("<int:run_id>/cancel/", views.run_cancel, name="cancel"),
]
