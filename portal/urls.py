from django.urls import path

from portal import views

app_name = "portal"

urlpatterns = [
    path("", views.start, name="start"),
    path("enter/<str:token>", views.enter, name="enter"),
    path("home", views.home, name="home"),
    path("statement", views.statement, name="statement"),
    path("autopay", views.autopay, name="autopay"),
    path("methods/add", views.method_add, name="method_add"),
    path("methods/paypal", views.wallet_add, name="wallet_add"),
    path("methods/paypal/return", views.wallet_return, name="wallet_return"),
    path("methods/<int:method_id>/default", views.method_default, name="method_default"),
    path("methods/<int:method_id>/remove", views.method_remove, name="method_remove"),
    path("disputes/new", views.dispute_new, name="dispute_new"),
    path("sign-out", views.sign_out, name="sign_out"),
]
