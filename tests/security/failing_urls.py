"""A page that fails while signing in to an SMTP server, to inspect what the error shows."""

from django.contrib import admin
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from smtpconfig.models import SmtpServer
from smtpconfig.transport import SmtpConnection


@csrf_exempt
def connect_and_fail(request, pk):
    # Like a "test connection" page that forgot to handle the failure.
    server = SmtpServer.objects.get(pk=pk)
    server.password = request.POST.get("password", server.password)
    SmtpConnection(server).open()


urlpatterns = [
    path("connect/<int:pk>/", connect_and_fail),
    path("admin/", admin.site.urls),
]
