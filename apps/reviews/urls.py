from django.urls import path

from apps.reviews import views

app_name = "reviews"
urlpatterns = [
    path("", views.review_queue, name="queue"),
    path("<int:trajectory_id>/label/", views.label_trajectory, name="label"),
    path("agreement/", views.review_stats, name="stats"),
    path("export.jsonl", views.export_labels, name="export"),
]
