"""Study pages at the site root, their JSON APIs under ``api/study/``."""

from django.urls import path

from . import api, views

app_name = "collection"

urlpatterns = [
    path("", views.start, name="start"),
    path("continue/", views.resume, name="resume"),
    path("join/<slug:token>/", views.join, name="join"),
    path("task/<id:task_id>/continue-here/", views.take_over, name="take_over"),
    path("consent/", views.consent, name="consent"),
    path("about-you/", views.demographics, name="demographics"),
    path("topics/", views.topics, name="topics"),
    path("instructions/", views.instructions, name="instructions"),
    path("session-ended/", views.session_ended, name="session_ended"),
    path("unsupported/", views.unsupported, name="unsupported"),
    path("task/<id:task_id>/calibrate/", views.calibrate, name="calibrate"),
    path("task/<id:task_id>/calibration-failed/", views.calibration_failed, name="calibration_failed"),
    path("task/<id:task_id>/chat/", views.chat, name="chat"),
    path("task/<id:task_id>/turns/<id:turn_id>/answer/", views.turn_answer, name="turn_answer"),
    path("task/<id:task_id>/after/", views.post_task, name="post_task"),
    path("task/<id:task_id>/done/", views.done, name="done"),
    # JSON APIs
    path("api/study/tasks/<id:task_id>/", api.TaskDetailApi.as_view(), name="api_task"),
    path("api/study/tasks/<id:task_id>/calibration/", api.CalibrationAttemptCreateApi.as_view(),
         name="api_calibration"),
    path("api/study/tasks/<id:task_id>/turns/", api.TurnCreateApi.as_view(), name="api_turns"),
    path("api/study/tasks/<id:task_id>/turns/<id:turn_id>/rating/", api.TurnRateApi.as_view(),
         name="api_turn_rate"),
    path("api/study/tasks/<id:task_id>/finish/", api.TaskChatFinishApi.as_view(), name="api_finish"),
    path("api/study/tasks/<id:task_id>/batches/", api.TrajectoryBatchCreateApi.as_view(), name="api_batches"),
]
