from django.urls import path

from apps.rollouts import views

app_name = "rollouts"
urlpatterns = [
    path("", views.trajectory_list, name="list"),
    path("<int:trajectory_id>/", views.trajectory_detail, name="detail"),
    path("steps/<int:step_id>/screenshot.jpg", views.step_screenshot, name="screenshot"),
]
