from django.http import HttpRequest, HttpResponse


def home(request: HttpRequest) -> HttpResponse:
    return HttpResponse("callsite is running. The browser app arrives with the browser issue.")
