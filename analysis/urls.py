from django.urls import path

from . import views

app_name = "analysis"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("figures/<int:pk>.png", views.figure_png, name="figure_png"),
    path("figures/<int:pk>.svg", views.figure_svg, name="figure_svg"),
]
