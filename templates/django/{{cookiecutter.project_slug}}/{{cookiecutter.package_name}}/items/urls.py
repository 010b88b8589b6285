from django.urls import path

from . import views

urlpatterns = [
    path("items", views.ItemCollection.as_view(), name="item-list"),
    path("items/<int:item_id>", views.ItemDetail.as_view(), name="item-detail"),
]
