"""Read-only JSON view of one job, polled by pages that show progress."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .models import Job


class JobDetailApi(APIView):
    class OutputSerializer(serializers.ModelSerializer):
        cause = serializers.CharField(read_only=True, help_text="The failure in one line.")
        is_finished = serializers.BooleanField(read_only=True)

        class Meta:
            model = Job
            fields = [
                "id", "kind", "status", "progress", "message", "log_tail", "queue",
                "created_at", "started_at", "finished_at", "result", "error", "cause", "is_finished",
            ]

    @extend_schema(responses=OutputSerializer)
    def get(self, request: Request, pk: int) -> Response:
        jobs = Job.objects.all()
        # Others' jobs (their logs, results, tracebacks) need the permission to view jobs (both
        # staff roles hold it); being staff is not enough. Other users' jobs are not found.
        if not request.user.has_perm("jobs.view_job"):
            jobs = jobs.filter(created_by=request.user)
        job = get_object_or_404(jobs, pk=pk)
        return Response(self.OutputSerializer(job).data)
