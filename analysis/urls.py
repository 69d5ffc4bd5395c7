from django.urls import path

from . import views

app_name = "analysis"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("figures/<id:pk>.png", views.figure_png, name="figure_png"),
    path("figures/<id:pk>.svg", views.figure_svg, name="figure_svg"),
]
