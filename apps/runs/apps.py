from django.apps import AppConfig
from django.db.models.signals import pre_delete


class RunsConfig(AppConfig):
    name = "apps.runs"
    label = "runs"

    def ready(self) -> None:
        from apps.runs.models import Run
        from apps.runs.retention import on_run_delete

        pre_delete.connect(on_run_delete, sender=Run, dispatch_uid="runs.remove_files")
