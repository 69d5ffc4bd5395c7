from django.urls import path

from . import review_views, views, withdrawal_views

app_name = "crowd"

urlpatterns = [
    path("", views.CrowdIndexView.as_view(), name="index"),
    path("replay/<id:turn_id>/", views.TurnReplayView.as_view(), name="replay"),
    path("qc/", views.QCDistributionView.as_view(), name="qc_plots"),
    path("eyetracking-report/", views.EyeTrackingReportView.as_view(), name="eyetracking_report"),
    path("release-exclusions/", views.ReleaseExclusionView.as_view(), name="release_exclusions"),
    path("task/<id:task_id>/", views.TaskReviewView.as_view(), name="task_review"),
    path("worker/<id:worker_id>/", views.WorkerReviewView.as_view(), name="worker_review"),
    path("study/<id:study_id>/monitor/", views.StudyMonitorView.as_view(), name="study_monitor"),
    path("study/<id:study_id>/monitor.json", views.StudyMonitorDataView.as_view(), name="study_monitor_data"),
    path("withdrawal/<id:withdrawal_id>/", withdrawal_views.WithdrawalView.as_view(), name="withdrawal"),
    path("review/qc/", review_views.QCReviewQueueView.as_view(), name="review_queue_qc"),
    path("review/<id:selection_id>/", review_views.ReviewQueueView.as_view(), name="review_queue"),
]
