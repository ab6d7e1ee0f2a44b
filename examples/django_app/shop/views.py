import json

from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from tenancy.django import stream_in_tenant

from .models import Order


def orders(request):
    if request.method == "POST":
        body = json.loads(request.body or b"{}")
        fields = {"title": body["title"]}
        if "tenant_id" in body:  # a client trying to write into another tenant
            fields["tenant_id"] = body["tenant_id"]
        order = Order.objects.create(**fields)
        order.refresh_from_db()
        return JsonResponse({"id": order.id, "tenant_id": str(order.tenant_id)}, status=201)
    return JsonResponse(
        {"tenant": str(request.tenant_id), "titles": sorted(o.title for o in Order.objects.all())}
    )


def _titles():
    for order in Order.objects.order_by("title").iterator():
        yield order.title + "\n"


def orders_stream(request):
    # real streaming: the iterator runs in its own transaction with the request's context
    return StreamingHttpResponse(stream_in_tenant(request, _titles()))


def orders_stream_buffered(request):
    # a plain streaming response: the middleware consumes it inside the request's transaction
    return StreamingHttpResponse(_titles())


def health(request):
    return HttpResponse("ok")
