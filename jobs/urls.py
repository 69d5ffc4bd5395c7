from django.urls import path

from .api import JobDetailApi

app_name = "jobs"

urlpatterns = [
    path("<id:pk>/", JobDetailApi.as_view(), name="detail"),
]
