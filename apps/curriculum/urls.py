from django.urls import path

from apps.curriculum import views

app_name = "curriculum"
urlpatterns = [
    path("", views.task_list, name="list"),
    path("bulk/", views.task_bulk, name="bulk"),
    path("<int:task_id>/", views.task_detail, name="detail"),
    path("<int:task_id>/edit/", views.task_edit, name="edit"),
]
