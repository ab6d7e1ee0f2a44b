from django.urls import path
from shop import views

urlpatterns = [
    path("orders", views.orders),
    path("orders/stream", views.orders_stream),
    path("orders/stream-buffered", views.orders_stream_buffered),
]
