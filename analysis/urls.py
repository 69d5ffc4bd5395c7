from django.urls import path

from . import leaderboard_views, plan_views, views

app_name = "analysis"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("figures/<id:pk>.png", views.figure_png, name="figure_png"),
    path("figures/<id:pk>.svg", views.figure_svg, name="figure_svg"),
    path("plan/", plan_views.plan_page, name="plan"),
    path("plan/<id:pk>.json", plan_views.plan_json, name="plan_json"),
    path("plan/<id:pk>.svg", plan_views.plan_svg, name="plan_svg"),
    path("leaderboard/", leaderboard_views.leaderboard_page, name="leaderboard"),
    path("leaderboard/<id:pk>.csv", leaderboard_views.leaderboard_csv, name="leaderboard_csv"),
    path("leaderboard/<id:pk>.json", leaderboard_views.leaderboard_json, name="leaderboard_json"),
    path("leaderboard/<id:pk>.png", leaderboard_views.leaderboard_png, name="leaderboard_png"),
    path("leaderboard/<id:pk>.svg", leaderboard_views.leaderboard_svg, name="leaderboard_svg"),
]
