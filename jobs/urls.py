from django.urls import path

from .apis import JobDetailApi

app_name = "jobs"

urlpatterns = [
    path("<id:pk>/", JobDetailApi.as_view(), name="detail"),
]
