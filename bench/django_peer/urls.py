"""The SCIM endpoints of django-scim2 under /scim/v2/, as its README mounts them."""

from django.urls import include, path

urlpatterns = [path("scim/v2/", include("django_scim.urls", namespace="scim"))]
